import * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { FORGET_AFTER_MS, InProcessBus, LoadCounters, PeerView, loadMeterByName, type ConfigDropReason, type ControlPlane, type LoadMeter, type NodeStatusName } from '../cluster';
import { ConfigError } from '../errors';
import { createLogger, RateLimitedLog, type Logger } from '../log';
import { CompiledRules, peerChoiceByName, type PeerChoice, type PolicyConfig, type SelfState } from '../policy';
import { splitMethodPath } from '../wire';
import type { HttpGateway } from '../http';
import type { MemberInfo } from '../transport';
import { AdviceCache } from './advice-cache';
import { Admission } from './admission';
import { addBrokerService } from './broker-service';
import { BrokerMetrics } from './broker-metrics';
import { CallGate } from './call-gate';
import { ConnectionLimits } from './connection-limits';
import { controlPlaneHandlers, createControlPlane } from './control-plane-factory';
import { PeerSweep, UrgentReport, urgentGapMs } from './control-timers';
import { Forwarder } from './forwarder';
import { createHttpGateway } from './http-factory';
import { IdentityTakeover } from './identity-takeover';
import { NodeListener } from './listen';
import { MainLoopSampler } from './main-loop-sampler';
import { NodeHealth } from './node-health';
import { NodeSelf } from './node-self';
import { NodeStatus } from './node-status';
import { parseBrokerOptions, type BrokerOptions, type ResolvedBrokerOptions, type RuntimeConfig } from './options';
import { sessionRulesFromProto } from './proto-rules';
import { ReportIntake } from './report-intake';
import { OpenFiles, ResourcePressure } from './resource-pressure';
import { RuntimeSettings, type CurrentConfig } from './runtime-settings';
import { ServerReflection } from './server-reflection';
import { grpcServerOptions } from './server-options';
import { SessionTable, type SessionEndReason, type SessionInfo } from './session-table';
import { drainOnSignals } from './signals';
import { TakeoverAddresses } from './takeover-addresses';
import { listenCredentials, peerCredentials, securitySummary } from './tls';

/**
 * One node of a peerbroker cluster: hosts gRPC services, reports its load to its
 * peers, and on every call decides to run it here or redirect it to a better peer.
 * This class wires the parts together (node-status.ts, node-self.ts, listen.ts, ...)
 * and runs the node's life: start, stop, drain.
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
  private readonly policy: PolicyConfig;
  private readonly counters = new LoadCounters();
  private readonly sampler: MainLoopSampler;
  private readonly dropLog = new RateLimitedLog(10_000);
  private readonly settings: RuntimeSettings;
  private readonly intake: ReportIntake;
  private readonly sweep: PeerSweep;
  private readonly urgent: UrgentReport;
  private readonly health: NodeHealth;
  private readonly nodeStatus: NodeStatus;
  /** This node as its reports, `Members`, `Status` and the cluster page describe it. */
  private readonly node: NodeSelf;
  private readonly listener: NodeListener;
  private readonly reflection = new ServerReflection();
  /** The HTTP/JSON listener and cluster page (`httpListen`). */
  private readonly http?: HttpGateway;
  private readonly limits: ConnectionLimits;
  private readonly observed: BrokerMetrics;
  private control?: ControlPlane;
  private takeover?: IdentityTakeover;
  private boundEndpoint?: string;
  private state: 'new' | 'started' | 'stopped' = 'new';
  private draining?: Promise<void>;
  private removeSignalHandlers?: () => void;

  constructor(options: BrokerOptions) {
    this.options = parseBrokerOptions(options);
    const o = this.options;
    this.log = (o.logger ?? createLogger({ level: o.logLevel, format: o.logFormat })).child({ node: o.nodeId });
    this.peers = new PeerView({ offlineAfterPeriods: o.offlineAfterPeriods, forgetAfterMs: FORGET_AFTER_MS });
    const meters: LoadMeter[] = (o.meters ?? []).map((m) => (typeof m === 'string' ? loadMeterByName(m) : m));
    this.urgent = new UrgentReport(
      () => urgentGapMs(this.options.periodMs, this.peers.peers.length),
      () => this.control?.reportNow(),
    );
    this.admission = new Admission(o.capacity, o.maxQueue, o.threshold, () => this.state === 'started' && this.urgent.request(), this.counters);
    this.sessions = new SessionTable(o.nodeId, o.maxSessions);
    this.sessions.onListenerError = (err, why) => this.log.error({ err: (err as Error).message, why }, 'an onSessionEnd listener threw');
    const services = this.services;
    const self: SelfState = {
      nodeId: o.nodeId,
      load: 0,
      running: 0,
      queued: 0,
      capacity: o.capacity,
      maxQueue: o.maxQueue,
      hosts: (s) => services.has(s),
      hasSession: (token) => this.sessions.touch(token, Date.now()),
    };
    this.forwarder = new Forwarder(o.peerCredentials ?? (o.tlsLoaded ? peerCredentials(o.tlsLoaded) : undefined));
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
      self,
      admission: this.admission,
      peers: this.peers,
      config: this.policy,
      choice: peerChoiceByName(o.peerChoice),
      sessions: this.sessions,
      forwarder: this.forwarder,
      advice: new AdviceCache(self, () => this.boundEndpoint ?? '', this.peers, this.policy, () => this.gate.choice, () => this.options.periodMs),
      periodMs: () => this.options.periodMs,
      cancelGraceMs: o.cancelGraceMs,
      interceptors: (o.serverOptions?.interceptors?.length ?? 0) > 0,
      // Refusals and overruns come in floods: nothing of the line is built unless it is written.
      onOverload: (d, now) => {
        const suppressed = this.dropLog.allow('overload', now);
        if (suppressed >= 0) this.log.warn({ reason: d.reason, suppressed }, d.message);
      },
      onOverrun: (path) => {
        const suppressed = this.dropLog.allow(`overrun ${path}`, performance.now());
        if (suppressed >= 0) this.log.warn({ path, graceMs: o.cancelGraceMs, suppressed }, 'handler of a cancelled call still runs after the grace time; its slot is taken back');
      },
      onRedirect: (d) => {
        if (this.log.isLevelEnabled('debug')) this.log.debug({ to: d.peer.nodeId, reason: d.reason }, 'redirect');
      },
    });
    this.settings = new RuntimeSettings(o, this.policy, this.admission, this.gate, this.log, this.dropLog, () => {
      if (this.state !== 'started') return;
      this.control?.update(this.node.info());
      // The sweep and the health check follow the new period at once.
      this.sweep.reschedule();
      this.nodeStatus.reschedule();
    });
    this.intake = new ReportIntake(o.cluster, this.peers, this.log, this.dropLog);
    this.sweep = new PeerSweep(this.peers, () => this.options.periodMs, () => {
      this.sessions.sweep(Date.now());
      this.takeover?.reconcile();
      // Redirect counts reach the reporter thread at most twice a period, and only when they moved.
      if (this.gate.counters.takeChanged()) this.control?.update(this.node.info());
    }, this.log);
    this.sampler = new MainLoopSampler(this.counters, meters, () => this.options.periodMs, () => this.gate.stats);
    this.health = new NodeHealth(o.maxLoopDelayMs, o.healthProbe, () => this.options.periodMs);
    this.server = new grpc.Server(grpcServerOptions(o));
    this.limits = new ConnectionLimits(o.nodeId, o.maxConnections, o.maxStreams, this.log, this.dropLog);
    const openFiles = new OpenFiles();
    const pressure = new ResourcePressure([...this.limits.resources(), openFiles]);
    this.nodeStatus = new NodeStatus({
      counters: this.counters,
      self,
      health: this.health,
      log: this.log,
      periodMs: () => this.options.periodMs,
      offlineAfterPeriods: o.offlineAfterPeriods,
      loopDelayMs: () => this.sampler.lastDelayMs,
      pressure: () => {
        openFiles.refresh();
        return pressure.check();
      },
      reportNow: () => this.control?.reportNow(),
      recheckPeers: () => this.takeover?.recheck(),
    });
    this.listener = new NodeListener(this.server, this.limits, this.log);
    this.http = createHttpGateway(o, {
      log: this.log,
      peers: this.peers,
      tls: o.tlsLoaded,
      limits: this.limits,
      acceptedHeaders: this.gate.acceptedHeaders,
      threshold: () => this.policy.threshold,
      self: () => this.node.sample(),
    });
    this.node = new NodeSelf({
      options: o,
      incarnation: Date.now(),
      counters: this.counters,
      admission: this.admission,
      gate: this.gate,
      peers: this.peers,
      services,
      endpoint: () => this.boundEndpoint ?? '',
      adopted: () => this.adoptedEndpoints(),
      httpUrl: () => this.http?.url,
      configDropped: () => this.configDropped as Record<string, number>,
    });
    this.peers.on('online', (p) => this.log.info({ peer: p.nodeId, endpoint: p.endpoint }, 'peer on-line'));
    this.peers.on('offline', (p) => this.log.info({ peer: p.nodeId, endpoint: p.endpoint }, 'peer off-line'));
    this.peers.on('left', (p) => this.log.info({ peer: p.nodeId }, 'peer left'));
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
   * node stopped (`stopped`); and for the token of a unary enter call whose handler answered
   * after its client had gone (`aborted`: no session opened). Returns a function that removes
   * the listener.
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
    const o = this.options;
    for (const s of o.services ?? []) {
      if (!this.added.has(s)) throw new ConfigError('services', `names '${s}', which the module did not add (added: ${[...this.added].join(', ')})`);
    }
    this.state = 'started';
    // stop() may run while start() waits: then nothing more is started.
    const stillStarting = () => {
      if (this.state !== 'started') throw new Error(`broker '${this.nodeId}' was stopped while it started`);
    };
    try {
      this.settings.startRules();
      addBrokerService(this.server, o.nodeId, this.node);
      this.health.addToServer(this.server, [...this.services]);
      if (o.reflection) this.log.info({ services: await this.reflection.addToServer(this.server) }, 'serving reflection');
      const creds = listenCredentials(o, o.tlsLoaded, this.log);
      const { endpoint, bound } = await this.listener.bindOwn(o.listen, o.advertise, creds, o.exchange !== undefined || o.nats.length > 0);
      this.boundEndpoint = endpoint;
      stillStarting();
      await this.http?.start();
      stillStarting();
      if (!bound) this.nodeStatus.set('UNHEALTHY');
      this.takeover = new IdentityTakeover(
        o.nodeId,
        this.server,
        creds,
        this.peers,
        {
          allow: o.takeover,
          onLeave: o.takeoverOnLeave,
          addresses: o.takeoverAddresses ? TakeoverAddresses.of(o.takeoverAddresses) : TakeoverAddresses.defaultFor(endpoint),
          onAdopt: o.onAdopt,
          onRelease: o.onRelease,
        },
        this.log,
        {
          changed: () => {
            this.listener.guardHeaders();
            this.control?.update(this.node.info());
            this.control?.reportNow();
          },
          connected: () => this.nodeStatus.controlConnected,
          claimGraceMs: () => 2 * this.options.periodMs,
          periodMs: () => this.options.periodMs,
          selfEndpoint: () => endpoint,
        },
      );
      this.sampler.start();
      this.control = createControlPlane(o, this.counters);
      if (this.control) {
        const handlers = controlPlaneHandlers({
          peers: this.peers,
          intake: this.intake,
          sweep: this.sweep,
          settings: this.settings,
          status: this.nodeStatus,
          log: this.log,
          dropLog: this.dropLog,
          drain: () => void this.drain(),
        });
        await this.control.start(this.node.info(), handlers);
        stillStarting();
      } else {
        this.log.warn('no NATS servers and no exchange given: this node runs alone');
      }
      this.sweep.start();
      this.nodeStatus.start();
      if (!bound) {
        const r = { listen: o.listen, endpoint, peers: this.peers, periodMs: o.periodMs, timeoutMs: o.reclaimTimeoutMs };
        await this.listener.reclaim(r, creds, this.nodeStatus);
        stillStarting();
      }
      if (o.metricsListen !== undefined) await this.observed.serve(o.metricsListen);
      stillStarting();
    } catch (err) {
      // A start that fails leaves nothing behind: no listener, timer or reporter thread. One
      // that stop() overtook closes what it opened after stop() had run.
      if (this.state === 'started') await this.stop();
      else {
        await this.http?.stop();
        await this.observed.stop();
        this.server.forceShutdown();
      }
      throw err;
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
    this.nodeStatus.set('LEAVING');
    this.sweep.stop();
    this.nodeStatus.stop();
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
      this.nodeStatus.set('DRAINING');
      this.log.info({ graceMs, running: this.admission.running, queued: this.admission.queued }, 'draining');
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
    return this.nodeStatus.status;
  }

  /** Endpoints this node serves for peers that went off-line. */
  adoptedEndpoints(): string[] {
    return this.takeover?.endpoints() ?? [];
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
    return this.node.members();
  }
}

/** A shared bus for brokers that live in one process (no NATS). */
export function inProcessBus(): InProcessBus {
  return new InProcessBus();
}
