import * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { FORGET_AFTER_MS, InProcessBus, LoadCounters, MAX_CLOCK_SKEW_MS, MAX_REPORT_ENDPOINTS, PeerView, loadMeterByName, type ConfigDropReason, type ConfigMessage, type ControlPlane, type ExchangeStatus, type LoadMeter, type NodeInfo, type NodeStatusName } from '../cluster';
import { ConfigError } from '../errors';
import { createLogger, RateLimitedLog, type Logger } from '../log';
import { CompiledRules, peerChoiceByName, type PeerChoice, type PolicyConfig, type SelfState } from '../policy';
import { splitMethodPath, parseHostPort } from '../wire';
import type { HttpGateway } from '../http';
import { AdviceCache } from './advice-cache';
import { Admission } from './admission';
import { brokerProto, type MemberInfo } from '../transport';
import { peerMembers, statusMessage } from './broker-service';
import { BrokerMetrics } from './broker-metrics';
import { CallGate } from './call-gate';
import { ConnectionLimits } from './connection-limits';
import { createControlPlane } from './control-plane-factory';
import { PeerSweep, PeriodicTimer, UrgentReport } from './control-timers';
import { Forwarder } from './forwarder';
import { createHttpGateway } from './http-factory';
import { bindPort, IdentityTakeover } from './identity-takeover';
import { NodeHealth } from './node-health';
import { MainLoopSampler } from './main-loop-sampler';
import { sessionRulesFromProto } from './proto-rules';
import { reclaimAddress } from './reclaim';
import { RedirectFlows } from './redirect-flows';
import { ReportIntake } from './report-intake';
import { TakeoverAddresses } from './takeover-addresses';
import { OpenFiles, ResourcePressure } from './resource-pressure';
import { RuntimeSettings, type CurrentConfig } from './runtime-settings';
import { ServerReflection } from './server-reflection';
import { grpcServerOptions } from './server-options';
import { SessionTable, type SessionEndReason, type SessionInfo } from './session-table';
import { drainOnSignals } from './signals';
import { listenCredentials, loadTls, peerCredentials, securitySummary, type LoadedTls } from './tls';
import { parseBrokerOptions, type BrokerOptions, type ResolvedBrokerOptions, type RuntimeConfig } from './options';

/**
 * One node of a peerbroker cluster: hosts gRPC services, reports its load to its
 * peers, and on every call decides to run it here or redirect it to a better peer.
 */
export class Broker {
  readonly options: ResolvedBrokerOptions;
  readonly log: Logger;
  readonly peers: PeerView;
  private readonly server: grpc.Server;
  private readonly admission: Admission;
  private readonly gate: CallGate;
  /** Services hosted here (a subset of those added when `services` is set). */
  private readonly services = new Set<string>();
  /** Every service added; calls for those not hosted are redirected to a host. */
  private readonly added = new Set<string>();
  private readonly sessions: SessionTable;
  private readonly forwarder: Forwarder;
  private readonly self: SelfState;
  private readonly policy: PolicyConfig;
  private readonly incarnation = Date.now();
  private readonly counters = new LoadCounters();
  private readonly sampler: MainLoopSampler;
  private readonly dropLog = new RateLimitedLog(10_000);
  private control?: ControlPlane;
  private readonly settings: RuntimeSettings;
  private readonly intake: ReportIntake;
  private readonly sweep: PeerSweep;
  private readonly urgent = new UrgentReport(
    () => Math.max(10, this.options.periodMs / 20, this.peers.peers.length),
    () => this.control?.reportNow(),
  );
  private boundEndpoint?: string;
  private state: 'new' | 'started' | 'stopped' = 'new';
  private readonly health: NodeHealth;
  private readonly reflection = new ServerReflection();
  private takeover?: IdentityTakeover;
  private readonly healthTimer: PeriodicTimer;
  private draining?: Promise<void>;
  /** The node's certificate and key (from `tls`); never logged. */
  private readonly tlsFiles?: LoadedTls;
  /** The HTTP/JSON listener and cluster page (`httpListen`). */
  private readonly http?: HttpGateway;
  private readonly flows = new RedirectFlows();
  private readonly limits: ConnectionLimits;
  private readonly openFiles = new OpenFiles();
  private readonly pressure: ResourcePressure;
  private readonly observed: BrokerMetrics;

  constructor(options: BrokerOptions) {
    this.options = parseBrokerOptions(options);
    const o = this.options;
    this.log = (o.logger ?? createLogger({ level: o.logLevel, format: o.logFormat })).child({ node: o.nodeId });
    this.peers = new PeerView({
      cluster: o.cluster,
      selfId: o.nodeId,
      offlineAfterPeriods: o.offlineAfterPeriods,
      forgetAfterMs: FORGET_AFTER_MS,
      maxClockSkewMs: MAX_CLOCK_SKEW_MS,
    });
    const meters: LoadMeter[] = (o.meters ?? []).map((m) => (typeof m === 'string' ? loadMeterByName(m) : m));
    this.admission = new Admission(o.capacity, o.maxQueue, o.threshold, () => this.state === 'started' && this.urgent.request(), this.counters);
    const services = this.services;
    this.self = {
      nodeId: o.nodeId,
      load: 0,
      running: 0,
      queued: 0,
      capacity: o.capacity,
      maxQueue: o.maxQueue,
      hosts: (s) => services.has(s),
    };
    this.self.hasSession = (token) => this.sessions.touch(token, Date.now());
    this.sessions = new SessionTable(o.nodeId, o.maxSessions);
    this.sessions.onListenerError = (err, why) => this.log.error({ err: (err as Error).message, why }, 'an onSessionEnd listener threw');
    this.tlsFiles = o.tls ? loadTls(o.tls) : undefined;
    this.forwarder = new Forwarder(o.peerCredentials ?? (this.tlsFiles ? peerCredentials(this.tlsFiles) : undefined));
    this.policy = {
      threshold: o.threshold,
      margin: o.margin,
      maxHops: o.maxHops,
      staleAfterPeriods: 2,
      forwardLegacy: o.forwardLegacy,
      rules: new CompiledRules(o.sessions, o.dedicated),
    };
    this.gate = new CallGate({
      nodeId: o.nodeId,
      self: this.self,
      admission: this.admission,
      peers: this.peers,
      config: this.policy,
      choice: peerChoiceByName(o.peerChoice),
      sessions: this.sessions,
      forwarder: this.forwarder,
      advice: new AdviceCache(this.self, () => this.boundEndpoint ?? '', this.peers, this.policy, () => this.gate.choice, () => this.options.periodMs),
      periodMs: () => this.options.periodMs,
      cancelGraceMs: o.cancelGraceMs,
      onOverload: (d) =>
        this.dropLog.maybe('overload', performance.now(), (suppressed) => this.log.warn({ reason: d.reason, suppressed }, d.message)),
      onOverrun: (path) =>
        this.dropLog.maybe(`overrun ${path}`, performance.now(), (suppressed) =>
          this.log.warn({ path, graceMs: o.cancelGraceMs, suppressed }, 'handler of a cancelled call still runs after the grace time; its slot is taken back'),
        ),
      // Under overload nearly every call is a redirect: build the log line only when it is written.
      onRedirect: (d) => {
        this.flows.count(d.peer.nodeId, d.reason);
        if (this.log.isLevelEnabled('debug')) this.log.debug({ to: d.peer.nodeId, reason: d.reason }, 'redirect');
      },
    });
    this.settings = new RuntimeSettings(o, this.policy, this.admission, this.gate, this.log, this.dropLog, () => {
      if (this.state !== 'started') return;
      this.control?.update(this.nodeInfo());
      // The sweep and the health check follow the new period at once.
      this.sweep.reschedule();
      this.healthTimer.reschedule();
    });
    this.intake = new ReportIntake(o.cluster, this.peers, this.log, this.dropLog);
    this.sweep = new PeerSweep(this.peers, () => this.options.periodMs, () => {
      this.sessions.sweep(Date.now());
      this.takeover?.reconcile();
      // Redirect counts reach the reporter thread at most twice a period, and only when they moved.
      if (this.flows.takeChanged()) this.control?.update(this.nodeInfo());
    }, this.log);
    this.healthTimer = new PeriodicTimer(() => this.options.periodMs, () => this.checkHealth());
    this.sampler = new MainLoopSampler(this.counters, meters, () => this.options.periodMs, () => this.gate.stats);
    this.health = new NodeHealth(o.maxLoopDelayMs, o.healthProbe, () => this.options.periodMs);
    this.server = new grpc.Server(grpcServerOptions(o));
    this.limits = new ConnectionLimits(o.nodeId, o.maxConnections, o.maxStreams, this.log, this.dropLog);
    this.pressure = new ResourcePressure([...this.limits.resources(), this.openFiles]);
    this.http = createHttpGateway(o, {
      log: this.log,
      peers: this.peers,
      tls: this.tlsFiles,
      limits: this.limits,
      acceptedHeaders: this.gate.acceptedHeaders,
      threshold: () => this.policy.threshold,
      self: () => ({ ...this.selfMember(), id: o.nodeId, running: this.admission.running, queued: this.admission.queued, ...this.gate.stats, redirects: this.flows.list() }),
    });
    this.watchPeers();
    this.observed = new BrokerMetrics(
      {
        nodeId: o.nodeId,
        gate: this.gate,
        admission: this.admission,
        counters: this.counters,
        sampler: this.sampler,
        peers: this.peers,
        sessions: this.sessions,
        limits: this.limits,
        takeover: () => this.takeover,
        configDropped: () => this.configDropped as Record<string, number>,
      },
      o.metrics,
    );
    if (o.metrics !== undefined || o.metricsListen !== undefined) void this.observed.registry;
  }

  /**
   * The prom-client registry holding this node's metrics (`peerbroker_*`): `options.metrics.registry`,
   * else one of its own. They are registered when first asked for, or at construction with
   * `metrics` or `metricsListen`.
   */
  get metrics(): Registry {
    return this.observed.registry;
  }

  /** `host:port` of the Prometheus endpoint (`metricsListen`), once started. */
  get metricsEndpoint(): string | undefined {
    return this.observed.endpoint;
  }

  /**
   * Calls `listener` for every session this node owned that ends: its exit call succeeded
   * (`exit`), it was idle past its idle time (`expired`, noticed within half a period), or the
   * node stopped (`stopped`). Returns a function that removes the listener.
   */
  onSessionEnd(listener: (session: SessionInfo, why: SessionEndReason) => void): () => void {
    return this.sessions.onEnd(listener);
  }

  /** Base URL of the HTTP listener (`http://host:port`), when `httpListen` is set (known after start). */
  get httpUrl(): string | undefined {
    return this.http?.url || undefined;
  }

  /** This node's id. */
  get nodeId(): string {
    return this.options.nodeId;
  }

  /** The `host:port` clients use to reach this node (known after start). */
  get endpoint(): string {
    if (!this.boundEndpoint) throw new Error(`broker '${this.nodeId}' is not started`);
    return this.boundEndpoint;
  }

  /** Calls run here, redirected and rejected since start. */
  get stats(): { run: number; redirected: number; forwarded: number; rejected: number } {
    return { ...this.gate.stats };
  }

  /** Load now, 0..1. */
  load(): number {
    return this.admission.load();
  }

  /** The peer-choice rule in use. */
  get peerChoice(): PeerChoice {
    return this.gate.choice;
  }

  /**
   * Hosts a gRPC service: `definition` as proto-loader and grpc-js give it
   * (`pkg.Service.service`), `implementation` an object of handlers. With the handlers type
   * generated for it, `addService<BankingHandlers>(pkg.bank.Banking.service, {...})`, a missing
   * or mistyped handler is a compile error and the handlers' parameters are typed.
   */
  addService<Handlers extends grpc.UntypedServiceImplementation>(definition: grpc.ServiceDefinition<Handlers>, implementation: Handlers): void {
    if (this.state !== 'new') throw new Error(`broker '${this.nodeId}': addService after start`);
    const wrapped: grpc.UntypedServiceImplementation = {};
    let serviceName: string | undefined;
    for (const [name, method] of Object.entries(definition)) {
      const parts = splitMethodPath(method.path);
      if (!parts) throw new Error(`method '${name}' has a malformed path '${method.path}'`);
      serviceName = parts.service;
      const handler = implementation[name] ?? implementation[method.originalName ?? name];
      if (!handler) throw new Error(`service '${parts.service}': no handler for method '${name}'`);
      wrapped[name] = this.gate.wrap(method, parts.service, handler);
      this.http?.addMethod(method, wrapped[name] as never);
    }
    if (!serviceName) throw new Error('service definition has no methods');
    if (this.added.has(serviceName)) throw new Error(`service '${serviceName}' is already added`);
    this.added.add(serviceName);
    if (!this.options.services || this.options.services.includes(serviceName)) this.services.add(serviceName);
    this.settings.protoSessionRules.push(...sessionRulesFromProto(serviceName, definition));
    this.reflection.add(serviceName, definition);
    this.server.addService(definition, wrapped);
  }

  /** Binds the gRPC server, joins the control plane and starts reporting. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`broker '${this.nodeId}' was already started`);
    this.state = 'started';
    const o = this.options;
    for (const s of o.services ?? []) {
      if (!this.added.has(s)) throw new ConfigError('services', `names '${s}', which the module did not add (added: ${[...this.added].join(', ')})`);
    }
    this.settings.startRules();
    this.server.addService(brokerProto().peerbroker.v1.Broker.service, {
      Members: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { nodeId: o.nodeId, members: this.members() }),
      Status: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, this.statusMessage()),
    });
    this.health.addToServer(this.server, [...this.services]);
    if (o.reflection) this.log.info({ services: await this.reflection.addToServer(this.server) }, 'serving reflection');
    const creds = listenCredentials(o, this.tlsFiles, this.log);
    const { host, port: wanted } = parseHostPort(o.listen);
    const port = await this.bind(creds).catch((err: NodeJS.ErrnoException) => {
      // Our address may be held by the peer that adopted it while we were away:
      // join the cluster first (unhealthy, so no redirects come here), ask, then bind.
      if (wanted === 0 || !this.hasControlPlane() || err.code !== 'EADDRINUSE') {
        throw new Error(`cannot listen on '${o.listen}': ${err.message}`);
      }
      return undefined;
    });
    this.boundEndpoint = o.advertise ?? `${host}:${port ?? wanted}`;
    await this.http?.start().catch((err: Error) => {
      this.server.forceShutdown();
      throw err;
    });
    if (port === undefined) this.setStatus('UNHEALTHY');
    this.takeover = new IdentityTakeover(
      o.nodeId,
      this.server,
      creds,
      this.peers,
      {
        allow: o.takeover,
        onLeave: o.takeoverOnLeave,
        addresses: o.takeoverAddresses ? TakeoverAddresses.of(o.takeoverAddresses) : TakeoverAddresses.defaultFor(this.boundEndpoint),
        onAdopt: o.onAdopt,
        onRelease: o.onRelease,
      },
      this.log,
      {
        changed: () => {
          this.guardHeaders();
          this.control?.update(this.nodeInfo());
          this.control?.reportNow();
        },
        connected: () => this.controlConnected,
        claimGraceMs: () => 2 * this.options.periodMs,
        periodMs: () => this.options.periodMs,
        selfEndpoint: () => this.boundEndpoint ?? '',
      },
    );
    this.sampler.start();
    this.control = createControlPlane(o, this.counters);
    if (this.control) {
      await this.control.start(this.nodeInfo(), {
        onReports: (batch) => {
          if (batch.lateMs !== undefined) this.sweep.reporterStalled(batch.lateMs);
          this.intake.receive(batch);
        },
        knownPeers: () => this.peers.peers.map((p) => p.nodeId),
        onReporter: (detail, fatal) => this.onReporter(detail, fatal),
        onConfig: (m: ConfigMessage) => this.settings.applyMessage(m.values, m.version),
        onStatus: (s, detail) => this.onExchangeStatus(s, detail),
        onConfigError: (reason, drop) => this.settings.onError(reason, drop),
        onError: (detail) =>
          // One line per refused operation and subject (ours, so few), each at most every 10 s.
          this.dropLog.maybe(`nats-error ${detail.slice(0, 200)}`, performance.now(), (suppressed) =>
            this.log.warn({ detail, suppressed }, 'control plane: the NATS server refused an operation'),
          ),
      });
    } else {
      this.log.warn('no NATS servers and no exchange given: this node runs alone');
    }
    this.sweep.start();
    this.healthTimer.start();
    if (port === undefined) await this.reclaim(creds);
    if (o.metricsListen !== undefined) {
      try {
        await this.observed.serve(o.metricsListen);
      } catch (err) {
        await this.stop();
        throw err;
      }
    }
    if (o.handleSignals) this.removeSignalHandlers = drainOnSignals(this);
    this.log.info(
      {
        endpoint: this.boundEndpoint,
        services: [...this.services],
        control: this.control?.describe() ?? 'none',
        security: securitySummary(o),
        ...(this.observed.endpoint ? { metrics: `http://${this.observed.endpoint}/metrics` } : {}),
      },
      'broker started',
    );
  }

  /** Says LEAVING to the peers, stops serving and closes every handle. */
  async stop(): Promise<void> {
    if (this.state !== 'started') return;
    this.state = 'stopped';
    this.removeSignalHandlers?.();
    this.setStatus('LEAVING');
    this.sweep.stop();
    this.healthTimer.stop();
    await this.takeover?.stop();
    this.urgent.stop();
    this.sampler.sample();
    await this.control?.stop().catch((err: Error) => this.log.warn({ err: err.message }, 'control plane stop failed'));
    await this.http?.stop();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2_000);
      force.unref();
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    this.forwarder.close();
    this.sampler.stop();
    this.sessions.endAll();
    await this.observed.stop();
    this.log.info('broker stopped');
  }

  /**
   * Drains the node (what SIGTERM does): status DRAINING, calls of following clients
   * go to peers, in-flight calls get up to `drainGraceMs` to finish, then LEAVING and stop.
   */
  drain(graceMs = this.options.drainGraceMs): Promise<void> {
    if (this.state !== 'started') return Promise.resolve();
    this.draining ??= (async () => {
      this.setStatus('DRAINING');
      this.log.info({ graceMs, inFlight: this.admission.running + this.admission.queued }, 'draining');
      const deadline = Date.now() + graceMs;
      while (this.admission.running + this.admission.queued > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const left = this.admission.running + this.admission.queued;
      if (left > 0) this.log.warn({ left }, 'grace time over; stopping with calls in flight');
      await this.stop();
    })();
    return this.draining;
  }

  /** ONLINE, UNHEALTHY, DRAINING or LEAVING, as the reports say. */
  get status(): NodeStatusName {
    return this.counters.status;
  }

  // Its own endpoint first, then those it adopted (at most MAX_ADOPTED: its reports stay valid).
  private servedEndpoints(): string[] {
    return this.boundEndpoint ? [this.boundEndpoint, ...this.adoptedEndpoints()].slice(0, MAX_REPORT_ENDPOINTS) : [];
  }

  /** Endpoints this node serves for peers that went off-line. */
  adoptedEndpoints(): string[] {
    return this.takeover?.endpoints() ?? [];
  }

  private setStatus(s: NodeStatusName): void {
    if (this.counters.status === s) return;
    const from = this.counters.status;
    // DRAINING and LEAVING are final; health checks do not undo them.
    if ((from === 'DRAINING' || from === 'LEAVING') && (s === 'ONLINE' || s === 'UNHEALTHY')) return;
    this.counters.status = s;
    this.self.status = s === 'LEAVING' ? 'DRAINING' : s;
    this.health.setServing(s === 'ONLINE');
    this.log.info({ from, to: s }, 'status changed');
    this.control?.reportNow();
  }

  private checkHealth(): void {
    this.openFiles.refresh();
    this.health.check(this.sampler.lastDelayMs, this.pressure.check(), (healthy, reason) => {
      if (this.reclaiming) return;
      if (!healthy && this.counters.status === 'ONLINE') this.log.warn({ reason }, 'self-check failed');
      this.setStatus(healthy ? 'ONLINE' : 'UNHEALTHY');
    });
  }

  private reclaiming = false;
  private removeSignalHandlers?: () => void;
  private controlConnected = false;

  private async bind(creds: grpc.ServerCredentials): Promise<number> {
    const port = await bindPort(this.server, this.options.listen, creds);
    this.guardHeaders();
    return port;
  }

  // After every bind (adopted addresses too): the caps on connections and calls, and the
  // check of raw session tokens (grpc-js would drop a non-ASCII one unseen).
  private guardHeaders(): void {
    if (!this.limits.attach(this.server) && !this.headerGuardWarned) {
      this.headerGuardWarned = true;
      this.log.warn('this grpc-js version hides its HTTP/2 servers: no cap on connections and calls, and a session token that is not printable ASCII is dropped, not refused');
    }
  }

  private headerGuardWarned = false;

  private hasControlPlane(): boolean {
    return this.options.exchange !== undefined || this.options.nats.length > 0;
  }

  // Our report (a new incarnation) tells the adopter we are back; it releases, we bind.
  private async reclaim(creds: grpc.ServerCredentials): Promise<void> {
    this.reclaiming = true;
    const endpoint = this.boundEndpoint!;
    this.log.info({ endpoint }, 'address in use: asking the adopter to release it');
    const o = this.options;
    try {
      await reclaimAddress({ listen: o.listen, endpoint, peers: this.peers, periodMs: o.periodMs, timeoutMs: o.reclaimTimeoutMs, bind: () => this.bind(creds) });
    } catch (err) {
      this.reclaiming = false;
      await this.stop();
      throw err;
    }
    this.reclaiming = false;
    this.log.info({ endpoint }, 'address reclaimed');
    this.setStatus('ONLINE');
  }

  /** The threshold, margin, period and rules in force now. */
  currentConfig(): CurrentConfig {
    return this.settings.current();
  }

  /**
   * Applies runtime values on this node (what `peerbroker config set` does on every
   * node). Invalid values throw a ConfigError and change nothing.
   */
  configure(values: RuntimeConfig): void {
    this.settings.apply(values);
  }

  /** Config changes dropped, by reason (unsigned, bad-signature, replay, ...). */
  get configDropped(): Partial<Record<ConfigDropReason, number>> {
    return this.settings.dropped;
  }

  /** Every node this node knows, itself first. */
  members(): MemberInfo[] {
    return [this.selfMember(), ...peerMembers(this.peers, performance.now())];
  }

  private selfMember(): MemberInfo {
    return {
      nodeId: this.nodeId,
      endpoint: this.boundEndpoint ?? '',
      status: this.counters.status,
      load: this.admission.load(),
      services: [...this.services],
      endpoints: this.servedEndpoints(),
      inFlight: this.admission.running + this.admission.queued,
      capacity: this.options.capacity,
      reportAgeMs: 0,
      httpUrl: this.http?.url ?? '',
    };
  }

  private statusMessage() {
    return statusMessage(this.selfMember(), this.gate.stats, this.peers.dropped, this.configDropped);
  }

  /** What the reports say of this node that changes rarely. */
  private nodeInfo(): NodeInfo {
    return {
      cluster: this.options.cluster,
      nodeId: this.nodeId,
      endpoint: this.boundEndpoint ?? '',
      endpoints: this.servedEndpoints(),
      services: [...this.services],
      capacity: this.options.capacity,
      maxQueue: this.options.maxQueue,
      periodMs: this.options.periodMs,
      incarnation: this.incarnation,
      takeover: this.options.takeover,
      httpUrl: this.http?.url,
      redirects: this.flows.list(),
    };
  }

  // The reporter thread died and was restarted, or the main thread took over reporting;
  // when nothing can report, the node drains rather than look dead to its peers while serving.
  private onReporter(detail: string, fatal: boolean): void {
    if (!fatal) return this.log.warn({ detail }, 'reporter');
    this.log.error({ detail }, 'reporter: no way to report load; draining');
    void this.drain();
  }

  private watchPeers(): void {
    this.peers.on('online', (p) => this.log.info({ peer: p.nodeId, endpoint: p.endpoint }, 'peer on-line'));
    this.peers.on('offline', (p) => this.log.info({ peer: p.nodeId, endpoint: p.endpoint }, 'peer off-line'));
    this.peers.on('left', (p) => this.log.info({ peer: p.nodeId }, 'peer left'));
  }

  // With NATS gone the node keeps serving locally; peers' reports go stale, so it
  // stops redirecting to them by itself. Health says so under its own name.
  private onExchangeStatus(s: ExchangeStatus, detail: string): void {
    const up = s === 'connected' || s === 'reconnected';
    if (up && !this.controlConnected && s === 'reconnected') {
      // Peers that are alive report within a period or two; those still silent then are gone.
      setTimeout(() => this.takeover?.recheck(), this.options.offlineAfterPeriods * this.options.periodMs).unref();
    }
    this.controlConnected = up;
    this.health.setControlPlane(up);
    if (up) this.log.info({ detail }, `control plane ${s}`);
    else if (s === 'closed') this.log.info({ detail }, 'control plane closed');
    else this.log.warn({ detail }, `control plane ${s}: serving locally, no redirects to peers with stale reports`);
  }
}

/** A shared bus for brokers that live in one process (no NATS). */
export function inProcessBus(): InProcessBus {
  return new InProcessBus();
}
