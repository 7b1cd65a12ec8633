import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { CallCounters } from './call-counters';

/** Metrics in the library: where to register them, and whether to add the process metrics. */
export interface MetricsOptions {
  /** The prom-client registry to register in (e.g. prom-client's global `register`). Default: one of the broker's own. */
  registry?: Registry;
  /** Add prom-client's process metrics (`peerbroker_process_cpu_seconds_total`, ...), once per registry. Default true. */
  processMetrics?: boolean;
}

/** Prefix of every metric name. */
export const METRICS_PREFIX = 'peerbroker_';

/** What a broker shows its metrics; read at scrape time only. */
export interface MetricsSource {
  readonly nodeId: string;
  readonly calls: CallCounters;
  load(): number;
  running(): number;
  queued(): number;
  capacity(): number;
  maxQueue(): number;
  /** ONLINE, UNHEALTHY, DRAINING or LEAVING. */
  status(): string;
  /** The main loop's delay (p99 over the last period), ms. */
  loopDelayMs(): number;
  /** Every peer known, with its status as `Members` shows it (UNKNOWN when its report is stale) and report age. */
  peers(): Array<{ nodeId: string; status: string; reportAgeMs: number }>;
  reportsDropped(): Record<string, number>;
  configDropped(): Record<string, number>;
  /** Endpoints of off-line peers adopted since start, and served now. */
  takeovers(): { adopted: number; serving: number };
  sessions(): { live: number; ended: Record<string, number> };
  connections(): { open: number; max: number; refused: number; streams: number; maxStreams: number; streamsRefused: number };
}

type Labels = Record<string, string | number>;
type Sample = [Labels, number];

const hubs = new WeakMap<Registry, MetricsHub>();

/**
 * The metrics of the brokers registered in one registry: each metric is made once, with a
 * `node` label, and filled at scrape time from every broker's source (plain counters kept
 * by the gate and the other parts): nothing is recorded per call.
 */
class MetricsHub {
  readonly sources = new Set<MetricsSource>();

  constructor(registry: Registry, processMetrics: boolean) {
    const config = (name: string, help: string, labelNames: string[], samples: (s: MetricsSource) => Sample[]) => ({
      name: METRICS_PREFIX + name,
      help,
      labelNames: ['node', ...labelNames],
      registers: [registry],
      collect: this.collector(samples),
    });
    const counter = (...a: Parameters<typeof config>) => new Counter(config(...a));
    const gauge = (...a: Parameters<typeof config>) => new Gauge(config(...a));
    const one = (value: (s: MetricsSource) => number) => (s: MetricsSource): Sample[] => [[{}, value(s)]];
    const byKey = (label: string, r: Record<string, number> | ReadonlyMap<string, number>): Sample[] =>
      [...(r instanceof Map ? r : Object.entries(r))].map(([k, n]) => [{ [label]: k }, n]);

    counter('calls_total', 'calls decided by this node, by method, decision (local, redirect, forward, reject) and reason', ['service', 'method', 'decision', 'reason'], (s) =>
      s.calls.methods.flatMap((m) => {
        const base = { service: m.service, method: m.method };
        const out: Sample[] = [[{ ...base, decision: 'local', reason: '' }, m.local]];
        for (const decision of ['redirect', 'forward', 'reject'] as const) {
          for (const [reason, n] of m[decision]) out.push([{ ...base, decision, reason }, n]);
        }
        return out;
      }),
    );
    counter('redirects_total', 'redirect answers sent, by target node', ['target'], (s) => byKey('target', s.calls.totalsByTarget('redirect')));
    counter('forwards_total', 'calls of plain clients forwarded, by target node', ['target'], (s) => byKey('target', s.calls.totalsByTarget('forward')));
    gauge('load', 'load of this node as its reports say it (0..1)', [], one((s) => s.load()));
    gauge('running_calls', 'calls running here (holding a slot)', [], one((s) => s.running()));
    gauge('queued_calls', 'calls waiting for a slot', [], one((s) => s.queued()));
    gauge('capacity', 'concurrent calls at 100% load', [], one((s) => s.capacity()));
    gauge('max_queue', 'calls that may wait for a slot', [], one((s) => s.maxQueue()));
    gauge('status', 'status of this node: 1 for the current one', ['status'], (s) =>
      ['ONLINE', 'UNHEALTHY', 'DRAINING', 'LEAVING'].map((st) => [{ status: st }, st === s.status() ? 1 : 0]),
    );
    gauge('main_loop_delay_seconds', 'main-loop delay, p99 over the last period', [], one((s) => s.loopDelayMs() / 1000));
    gauge('peers', 'peers known, by status (UNKNOWN: report too old)', ['status'], (s) => {
      const by: Record<string, number> = { ONLINE: 0, UNHEALTHY: 0, DRAINING: 0, LEAVING: 0, OFFLINE: 0, UNKNOWN: 0 };
      for (const p of s.peers()) by[p.status] = (by[p.status] ?? 0) + 1;
      return byKey('status', by);
    });
    gauge('peer_report_age_seconds', "age of each peer's last report", ['peer'], (s) => s.peers().map((p) => [{ peer: p.nodeId }, p.reportAgeMs / 1000]));
    counter('reports_dropped_total', 'load reports dropped, by reason', ['reason'], (s) => byKey('reason', s.reportsDropped()));
    counter('config_dropped_total', 'config changes dropped, by reason', ['reason'], (s) => byKey('reason', s.configDropped()));
    counter('takeovers_total', 'endpoints of off-line peers this node adopted', [], one((s) => s.takeovers().adopted));
    gauge('adopted_endpoints', 'endpoints of off-line peers this node serves now', [], one((s) => s.takeovers().serving));
    gauge('sessions', 'live sessions this node owns', [], one((s) => s.sessions().live));
    counter('sessions_ended_total', 'sessions ended, by why (exit, expired, stopped, aborted)', ['why'], (s) => byKey('why', s.sessions().ended));
    gauge('connections', 'client connections open', [], one((s) => s.connections().open));
    gauge('max_connections', 'connections this node holds at most', [], one((s) => s.connections().max));
    counter('connections_refused_total', 'connections closed at once: the node held max-connections', [], one((s) => s.connections().refused));
    gauge('open_streams', 'calls open (HTTP/2 streams and HTTP requests), half-open ones included', [], one((s) => s.connections().streams));
    gauge('max_streams', 'calls this node holds open at most', [], one((s) => s.connections().maxStreams));
    counter('streams_refused_total', 'calls refused before any handler: the node held max-streams', [], one((s) => s.connections().streamsRefused));

    // Process metrics once per registry, whoever asked first (prom-client would refuse a second set).
    if (processMetrics && registry.getSingleMetric(`${METRICS_PREFIX}process_cpu_user_seconds_total`) === undefined) {
      collectDefaultMetrics({ register: registry, prefix: METRICS_PREFIX });
    }
  }

  // Each scrape: every sample of every broker, set afresh (counters from the parts' own totals).
  private collector(samples: (s: MetricsSource) => Sample[]): (this: Counter | Gauge) => void {
    const sources = this.sources;
    return function collect(this: Counter | Gauge) {
      this.reset();
      for (const s of sources) {
        for (const [labels, value] of samples(s)) {
          const l = { ...labels, node: s.nodeId };
          if (this instanceof Counter) this.inc(l, value);
          else this.set(l, value);
        }
      }
    };
  }
}

/**
 * Registers a broker's metrics in `options.registry` (or a new registry) and returns the
 * registry and how to take them out again (at stop). Brokers sharing a registry share the
 * metrics, told apart by their `node` label.
 */
export function registerMetrics(source: MetricsSource, options: MetricsOptions = {}): { registry: Registry; unregister: () => void } {
  const registry = options.registry ?? new Registry();
  let hub = hubs.get(registry);
  if (hub === undefined) {
    hub = new MetricsHub(registry, options.processMetrics !== false);
    hubs.set(registry, hub);
  }
  const sources = hub.sources;
  sources.add(source);
  return { registry, unregister: () => void sources.delete(source) };
}
