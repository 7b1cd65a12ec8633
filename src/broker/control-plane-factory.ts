import { LocalControlPlane, NatsExchange, WorkerControlPlane, type ControlPlane, type ControlPlaneHandlers, type LoadCounters, type PeerView } from '../cluster';
import type { Logger, RateLimitedLog } from '../log';
import type { PeerSweep } from './control-timers';
import type { NodeStatus } from './node-status';
import type { ResolvedBrokerOptions } from './options';
import type { ReportIntake } from './report-intake';
import type { RuntimeSettings } from './runtime-settings';

/**
 * The control plane the options ask for: the given in-process exchange; NATS from a
 * reporter thread (the default, so a busy main loop still reports); NATS on the main
 * thread (`reporterThread: false`); or none when no NATS server is named.
 */
export function createControlPlane(o: ResolvedBrokerOptions, counters: LoadCounters): ControlPlane | undefined {
  if (o.exchange) return new LocalControlPlane(o.exchange, counters, o.clusterKey);
  if (o.nats.length === 0) return undefined;
  if (!o.reporterThread) {
    const exchange = NatsExchange.forNode({
      servers: o.nats,
      cluster: o.cluster,
      nodeId: o.nodeId,
      connection: o.natsOptions,
      natsAuth: o.natsAuth,
    });
    return new LocalControlPlane(exchange, counters, o.clusterKey);
  }
  return new WorkerControlPlane(o.nats, counters, o.natsOptions, { natsAuth: o.natsAuth, clusterKey: o.clusterKey });
}

/** The parts of a broker that what the control plane delivers goes to. */
export interface ControlPlaneParts {
  peers: PeerView;
  intake: ReportIntake;
  sweep: PeerSweep;
  settings: RuntimeSettings;
  status: NodeStatus;
  log: Logger;
  dropLog: RateLimitedLog;
  /** Drains the node (nothing can report its load any more). */
  drain(): void;
}

/** Where a broker's control plane delivers peers' reports, config changes and its own state. */
export function controlPlaneHandlers(p: ControlPlaneParts): ControlPlaneHandlers {
  return {
    onReports: (batch) => {
      if (batch.lateMs !== undefined) p.sweep.reporterStalled(batch.lateMs);
      p.intake.receive(batch);
    },
    knownPeers: () => p.peers.peers.map((peer) => peer.nodeId),
    // The reporter thread died and was restarted, or the main thread took over reporting;
    // when nothing can report, the node drains rather than look dead to its peers while serving.
    onReporter: (detail, fatal) => {
      if (!fatal) return p.log.warn({ detail }, 'reporter');
      p.log.error({ detail }, 'reporter: no way to report load; draining');
      p.drain();
    },
    onConfig: (m) => p.settings.applyMessage(m.values, m.version),
    onStatus: (s, detail) => p.status.onExchangeStatus(s, detail),
    onConfigError: (reason, drop) => p.settings.onError(reason, drop),
    onError: (detail) => {
      // One line per refused operation and subject (ours, so few), each at most every 10 s.
      const suppressed = p.dropLog.allow(`nats-error ${detail.slice(0, 200)}`, performance.now());
      if (suppressed >= 0) p.log.warn({ detail, suppressed }, 'control plane: the NATS server refused an operation');
    },
  };
}
