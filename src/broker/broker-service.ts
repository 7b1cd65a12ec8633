import type * as grpc from '@grpc/grpc-js';
import type { PeerRecord, PeerView } from '../cluster';
import { brokerProto, type MemberInfo } from '../transport';
import type { NodeSelf } from './node-self';

/**
 * Most bytes of peers one `Members` answer carries: far below the 4 MiB grpc-js clients
 * accept, and cheap to build (encoding 1 MiB takes the main thread some 50 ms).
 */
export const MAX_MEMBERS_BYTES = 256 * 1024;

/**
 * The peers as `Members` lists them, at local time `now` (monotonic ms): those not
 * off-line first, then the off-line ones, as many as fit in `maxBytes` (a peer that does
 * not fit is left out, so a flood of fat fake reports cannot push the answer past what a
 * stub accepts, and the live members are the last to go).
 */
export function peerMembers(peers: PeerView, now: number, maxBytes = MAX_MEMBERS_BYTES): MemberInfo[] {
  const out: MemberInfo[] = [];
  let budget = maxBytes;
  for (const offline of [false, true]) {
    for (const p of peers.peers) {
      if ((p.status === 'OFFLINE') !== offline) continue;
      const size = sizeOf(p);
      if (size > budget) continue;
      budget -= size;
      out.push({
        nodeId: p.nodeId,
        endpoint: p.endpoint,
        status: peers.displayStatus(p, now),
        load: p.load,
        services: [...p.services],
        endpoints: p.endpoints,
        inFlight: p.inFlight,
        queued: p.queued,
        capacity: p.capacity,
        reportAgeMs: Math.round(now - p.receivedAt),
        httpUrl: p.httpUrl,
      });
    }
  }
  return out;
}

// An upper bound of a member's encoded size: its strings, a few bytes of framing each, and the numbers.
function sizeOf(p: PeerRecord): number {
  let n = 64 + p.nodeId.length + p.endpoint.length + p.httpUrl.length;
  for (const s of p.services) n += s.length + 3;
  for (const e of p.endpoints) n += e.length + 3;
  return n;
}

/** The `Status` answer: this node, its call counters and what it dropped (counts as strings: uint64). */
export function statusMessage(
  self: MemberInfo,
  calls: { run: number; redirected: number; rejected: number },
  reportsDropped: Record<string, number>,
  configDropped: Record<string, number>,
) {
  const asStrings = (r: Record<string, number>) =>
    Object.fromEntries(Object.entries(r).filter(([, n]) => n > 0).map(([k, n]) => [k, String(n)]));
  return {
    self,
    callsRun: String(calls.run),
    callsRedirected: String(calls.redirected),
    callsRejected: String(calls.rejected),
    reportsDropped: String(Object.values(reportsDropped).reduce((a, b) => a + b, 0)),
    reportsDroppedByReason: asStrings(reportsDropped),
    configDropped: asStrings(configDropped),
  };
}

/** Serves `peerbroker.v1.Broker` on `server`: `Members` (every node `node` knows) and `Status` (its counters). */
export function addBrokerService(server: grpc.Server, nodeId: string, node: NodeSelf): void {
  server.addService(brokerProto().peerbroker.v1.Broker.service, {
    Members: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { nodeId, members: node.members() }),
    Status: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, node.statusMessage()),
  });
}
