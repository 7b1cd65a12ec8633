import { connect, type NatsConnection } from 'nats';
import { loadSubject } from '../../src';
import { decodeReport, isRejected } from '../../src/cluster/report-codec';
import { waitFor } from './brokers';

/** The load reports of a cluster's nodes, counted by a raw NATS subscriber. */
export interface ReportWatch {
  /** Reports of `nodeId` seen since `reset()` (or the watch began), of its latest incarnation. */
  count(nodeId: string): number;
  /** Counts from zero again. */
  reset(): void;
  /** Waits until every node of `nodeIds` has `n` reports counted. */
  waitForEach(nodeIds: readonly string[], n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Counts the load reports each node of `cluster` publishes from now on, as every peer
 * subscribed since then receives them. A node's count starts again when it starts again (a
 * new incarnation), as its peers' count of its reports does. Signed reports are counted by
 * subject alone. Close it after the tests.
 */
export async function watchReports(url: string, cluster: string): Promise<ReportWatch> {
  const nc: NatsConnection = await connect({ servers: url, name: 'report-watch' });
  const counts = new Map<string, { incarnation: number | undefined; n: number }>();
  const prefix = loadSubject(cluster, '');
  nc.subscribe(loadSubject(cluster, '*'), {
    callback: (err, msg) => {
      if (err) return;
      const nodeId = msg.subject.slice(prefix.length);
      const r = decodeReport(msg.data);
      const incarnation = isRejected(r) ? undefined : r.incarnation;
      const c = counts.get(nodeId);
      if (!c || (incarnation !== undefined && c.incarnation !== incarnation)) counts.set(nodeId, { incarnation, n: 1 });
      else c.n++;
    },
  });
  // The subscription is in place once the server has answered.
  await nc.flush();
  const count = (nodeId: string) => counts.get(nodeId)?.n ?? 0;
  return {
    count,
    reset: () => counts.clear(),
    async waitForEach(nodeIds, n, timeoutMs = 30_000) {
      await waitFor(() => nodeIds.every((id) => count(id) >= n), timeoutMs, 20, `${n} reports of each of ${nodeIds.join(', ')}`).catch((err: Error) => {
        throw new Error(`${err.message}; counted ${nodeIds.map((id) => `${id}: ${count(id)}`).join(', ')}`);
      });
    },
    close: () => nc.close(),
  };
}
