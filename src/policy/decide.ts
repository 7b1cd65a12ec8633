import { status } from '@grpc/grpc-js';
import type { CallInfo, Decision, PeerChoice, PeerEntry, PolicyConfig, SelfState } from './types';

/** The decision that runs the call on this node; shared, never allocated per call. */
export const LOCAL: Decision = Object.freeze({ kind: 'local' });

// Reused between calls: the decision must not allocate on the hot path.
const scratch: PeerEntry[] = [];

/** True when `peer` may be the target of a redirect at time `now` (online and fresh). */
export function isEligible(peer: PeerEntry, service: string, now: number, cfg: PolicyConfig): boolean {
  return (
    peer.status === 'ONLINE' &&
    now - peer.receivedAt <= cfg.staleAfterPeriods * peer.periodMs &&
    peer.services.has(service)
  );
}

/**
 * DESIGN.md steps 1, 4 and 5: hop limit, threshold and margin, overload.
 * Pure: a function of the call, this node, the peers and the config.
 */
export function decide(
  call: CallInfo,
  self: SelfState,
  peers: readonly PeerEntry[],
  cfg: PolicyConfig,
  choice: PeerChoice,
  now: number,
): Decision {
  if (!self.hosts(call.service)) {
    return {
      kind: 'reject',
      code: status.UNIMPLEMENTED,
      message: `peerbroker: service '${call.service}' is not hosted on node '${self.nodeId}'`,
    };
  }
  const full = self.running >= self.capacity && self.queued >= self.maxQueue;
  // Step 1: a call at the hop limit is never bounced again.
  if (call.hops >= cfg.maxHops || !call.follows) return full ? overloaded(self) : LOCAL;
  // Step 4: below threshold, run here.
  if (self.load < cfg.threshold && !full) return LOCAL;

  // Full: any peer with room will do. Otherwise a peer must be lower by the margin.
  // The tolerance keeps "exactly margin lower" eligible despite rounding (0.7 - 0.2 < 0.5).
  const limit = full ? 1 - 1e-9 : self.load - cfg.margin + 1e-9;
  scratch.length = 0;
  for (let i = 0; i < peers.length; i++) {
    const p = peers[i];
    if (isEligible(p, call.service, now, cfg) && choice.loadOf(p) <= limit) scratch.push(p);
  }
  if (scratch.length === 0) return full ? overloaded(self) : LOCAL;
  const peer = choice.select(scratch);
  scratch.length = 0;
  return {
    kind: 'redirect',
    peer,
    reason: 'load',
    detail: `load ${self.load.toFixed(2)} > ${cfg.threshold.toFixed(2)}, peer at ${choice.loadOf(peer).toFixed(2)}`,
  };
}

// Step 5: nothing ran, and no location is given.
function overloaded(self: SelfState): Decision {
  return {
    kind: 'reject',
    code: status.RESOURCE_EXHAUSTED,
    message:
      `peerbroker: node '${self.nodeId}' is at capacity (${self.running} running, ` +
      `${self.queued} queued) and no peer can take the call`,
  };
}
