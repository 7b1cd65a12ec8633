import type { Registry } from 'prom-client';
import type { LoadCounters, PeerView } from '../cluster';
import type { Admission } from './admission';
import type { CallGate } from './call-gate';
import type { ConnectionLimits } from './connection-limits';
import type { IdentityTakeover } from './identity-takeover';
import type { MainLoopSampler } from './main-loop-sampler';
import { registerMetrics, type MetricsOptions, type MetricsSource } from './metrics';
import { serveMetrics, type MetricsServer } from './metrics-server';
import type { SessionTable } from './session-table';

/** The parts of a broker its metrics read. */
export interface BrokerParts {
  nodeId: string;
  gate: CallGate;
  admission: Admission;
  counters: LoadCounters;
  sampler: MainLoopSampler;
  peers: PeerView;
  sessions: SessionTable;
  limits: ConnectionLimits;
  takeover: () => IdentityTakeover | undefined;
  configDropped: () => Record<string, number>;
}

/** What a broker's metrics show, read from its parts at scrape time. */
export function brokerMetricsSource(b: BrokerParts): MetricsSource {
  return {
    nodeId: b.nodeId,
    calls: b.gate.counters,
    load: () => b.admission.load(),
    running: () => b.admission.running,
    queued: () => b.admission.queued,
    capacity: () => b.admission.capacity,
    maxQueue: () => b.admission.maxQueue,
    status: () => b.counters.status,
    loopDelayMs: () => b.sampler.lastDelayMs,
    peers: () => {
      const now = performance.now();
      return b.peers.peers.map((p) => ({ nodeId: p.nodeId, status: b.peers.displayStatus(p, now), reportAgeMs: Math.max(0, now - p.receivedAt) }));
    },
    reportsDropped: () => b.peers.dropped,
    configDropped: b.configDropped,
    takeovers: () => ({ adopted: b.takeover()?.adopted ?? 0, serving: b.takeover()?.endpoints().length ?? 0 }),
    sessions: () => ({ live: b.sessions.size, ended: b.sessions.ended }),
    connections: () => {
      const l = b.limits;
      return { open: l.connections, max: l.maxConnections, refused: l.connectionsRefused, streams: l.streams, maxStreams: l.maxStreams, streamsRefused: l.streamsRefused };
    },
  };
}

/** A broker's metrics: registered on first use, and served on their own port with `metricsListen`. */
export class BrokerMetrics {
  private registration?: { registry: Registry; unregister: () => void };
  private server?: MetricsServer;

  constructor(
    private readonly parts: BrokerParts,
    private readonly options: MetricsOptions | undefined,
  ) {}

  /** The registry holding the metrics (registered now if they were not yet). */
  get registry(): Registry {
    this.registration ??= registerMetrics(brokerMetricsSource(this.parts), this.options);
    return this.registration.registry;
  }

  /** `host:port` of the endpoint, while it serves. */
  get endpoint(): string | undefined {
    return this.server?.endpoint;
  }

  /** Serves `GET /metrics` on `listen`. */
  async serve(listen: string): Promise<void> {
    this.server = await serveMetrics(listen, this.registry);
  }

  /** Stops serving and takes this broker's series out of the registry. */
  async stop(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
    this.registration?.unregister();
    this.registration = undefined;
  }
}
