import type { PeerView } from '../cluster';
import type { MemberInfo } from '../transport';

/** The peers as `Members` lists them, at local time `now` (monotonic ms). */
export function peerMembers(peers: PeerView, now: number): MemberInfo[] {
  return peers.peers.map((p) => ({
    nodeId: p.nodeId,
    endpoint: p.endpoint,
    status: peers.displayStatus(p, now),
    load: p.load,
    services: [...p.services],
    endpoints: p.endpoints,
    inFlight: p.inFlight,
    capacity: p.capacity,
    reportAgeMs: Math.round(now - p.receivedAt),
  }));
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
