import { LocalControlPlane, NatsExchange, WorkerControlPlane, type ControlPlane, type LoadCounters } from '../cluster';
import type { ResolvedBrokerOptions } from './options';

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
