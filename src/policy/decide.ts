import { status } from '@grpc/grpc-js';
import type { RedirectReason } from '../wire';
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
 * The decision of docs/design.md, its steps in order: 1 session, 2 hop limit, 3 content
 * (services hosted elsewhere, dedicated homes), 4 draining or unhealthy, 5 load (threshold
 * and margin), 6 overload. Pure: a function of the call, this node, the peers, the config
 * and the time.
 */
export function decide(
  call: CallInfo,
  self: SelfState,
  peers: readonly PeerEntry[],
  cfg: PolicyConfig,
  choice: PeerChoice,
  now: number,
): Decision {
  const canMove = call.forwarded !== true && (call.follows || cfg.forwardLegacy === true);
  const full = self.running >= self.capacity && self.queued >= self.maxQueue;
  const rules = cfg.rules;

  // 1. Session: a pinned call goes to its owner whatever the hops or the load.
  if (call.session !== '' && rules !== undefined && rules.hasSessions) {
    const role = rules.sessionRole(call.path);
    // An enter call is balanced as any other: it may start a new session elsewhere.
    if (role !== null && role.within && !role.enter) return sessionDecision(call, self, peers, canMove, full);
  }

  const hosted = self.hosts(call.service);

  // 2. Hop limit: a call at the limit (or relayed by a peer) is never bounced again.
  if (call.hops >= cfg.maxHops) {
    if (!hosted) return notHosted(call, self, 'the call reached the hop limit');
    return full ? overloaded(self) : LOCAL;
  }

  // 3. Content: a service not hosted here goes to a host picked by the peer-choice rule.
  if (!hosted) {
    collect(peers, call.service, now, cfg, choice, Infinity, null, false);
    if (scratch.length === 0) {
      return {
        kind: 'reject',
        code: status.UNIMPLEMENTED,
        reason: 'not-hosted',
        message: `peerbroker: no online node hosts service '${call.service}'`,
      };
    }
    const peer = pick(choice);
    if (!canMove) return notHosted(call, self, `it is hosted on ${peer.nodeId}, but this client does not follow redirects`);
    return redirect(peer, 'service');
  }
  if (!canMove) return full ? overloaded(self) : LOCAL;

  // 3. Content, dedicated homes: a home below threshold gets the call (a home has a free
  // slot, so this sends a draining node's call where step 4 could too); above, the other
  // hosts share it under the load rule.
  const homes = rules !== undefined && rules.hasHomes ? rules.homes(call.path) : null;
  const awayFromHome = homes !== null && !homes.has(self.nodeId);
  if (awayFromHome) {
    scratch.length = 0;
    for (let i = 0; i < peers.length; i++) {
      const p = peers[i];
      if (homes.has(p.nodeId) && isEligible(p, call.service, now, cfg) && choice.loadOf(p) < cfg.threshold) scratch.push(p);
    }
    if (scratch.length > 0) return redirect(pick(choice), 'service', true);
  }

  // 4. Draining or unhealthy: every call that can move goes to a peer with a free slot; when
  // this node is full itself, to any peer with room (queue space included).
  if (self.status !== undefined && self.status !== 'ONLINE') {
    collect(peers, call.service, now, cfg, choice, full ? Infinity : 1 + 1e-9, null, true);
    if (scratch.length > 0) return redirect(pick(choice), self.status === 'DRAINING' ? 'draining' : 'unhealthy');
    return full ? overloaded(self) : LOCAL;
  }

  // 5. Load: below threshold, run here.
  if (self.load < cfg.threshold && !full) return LOCAL;

  // A call moved once runs where it lands unless this node is full: every hop costs a round
  // trip and CPU on both ends, and the node that sent it judged this one the better place;
  // when every node queues, a second hop only moves the wait and pays for it (bench/README
  // "Saturation": on the cpu workload calls bounced 1.1-1.2 times each and 7-13 % were
  // refused). The call of a client that spreads its calls as nodes advise moves only when it
  // would wait here behind more than the margin's worth of queue: the spread keeps the
  // balance, redirects only take what would queue. Neither stays on a full node: with no
  // queue space (maxQueue below margin × capacity, even 0) it would be refused here while a
  // peer may have room.
  if (!full && (call.hops > 0 || (call.advised && self.load <= 1 + cfg.margin + 1e-9))) return LOCAL;

  // Join the shortest queue, as far as this node can tell: the call goes to a peer whose load
  // with it (reported, plus this node's redirects since the report) stays at least the margin
  // below this node's with it; when this node is full, to any peer with room. Loads are not
  // capped at 1: a queue is load, and a peer with queue space has room.
  const limit = full ? Infinity : self.load + 1 / self.capacity - cfg.margin + 1e-9;
  collect(peers, call.service, now, cfg, choice, limit, awayFromHome ? homes : null, true);
  // 6. Overload: full, and no peer with room.
  if (scratch.length === 0) return full ? overloaded(self) : LOCAL;
  const peer = pick(choice);
  return redirect(peer, 'load', false, self.load, choice.loadOf(peer));
}

/**
 * The details text of a redirect sent for a call of `path` (`service`) by node `selfId`
 * with `threshold`, for a person reading a log: `load 0.81 > 0.50, peer at 0.10`.
 */
export function redirectDetail(d: Extract<Decision, { kind: 'redirect' }>, path: string, service: string, selfId: string, threshold: number): string {
  switch (d.reason) {
    case 'load':
      return `load ${d.selfLoad.toFixed(2)} > ${threshold.toFixed(2)}, peer at ${d.peerLoad.toFixed(2)}`;
    case 'service':
      return d.home ? `${path} prefers its home` : `service '${service}' is not hosted on ${selfId}`;
    case 'session':
      return `session belongs to ${d.peer.nodeId}`;
    default:
      return `node ${selfId} is ${d.reason}`;
  }
}

/**
 * Fills `scratch` with eligible peers whose load with one more call is at most `limit`,
 * leaving out `exclude`; with `needRoom`, only peers with a free slot or queue space.
 */
function collect(
  peers: readonly PeerEntry[],
  service: string,
  now: number,
  cfg: PolicyConfig,
  choice: PeerChoice,
  limit: number,
  exclude: ReadonlySet<string> | null,
  needRoom: boolean,
): void {
  scratch.length = 0;
  for (let i = 0; i < peers.length; i++) {
    const p = peers[i];
    if (!isEligible(p, service, now, cfg) || (exclude !== null && exclude.has(p.nodeId))) continue;
    const after = choice.loadOf(p) + 1 / p.capacity;
    if (after <= limit && (!needRoom || hasRoom(p, after))) scratch.push(p);
  }
}

/** True when a peer at load `after` (this call included) still has a slot or queue space for it. */
function hasRoom(p: PeerEntry, after: number): boolean {
  return after <= 1 + p.maxQueue / p.capacity + 1e-9;
}

function pick(choice: PeerChoice): PeerEntry {
  const peer = choice.select(scratch);
  scratch.length = 0;
  return peer;
}

function redirect(peer: PeerEntry, reason: RedirectReason, home = false, selfLoad = 0, peerLoad = 0): Decision {
  return { kind: 'redirect', peer, reason, home, selfLoad, peerLoad };
}

function sessionDecision(call: CallInfo, self: SelfState, peers: readonly PeerEntry[], canMove: boolean, full: boolean): Decision {
  if (call.sessionOwner === self.nodeId) {
    if (self.hasSession?.(call.session)) return full ? pinnedOverloaded(call, self) : LOCAL;
    return {
      kind: 'reject',
      code: status.FAILED_PRECONDITION,
      reason: 'session-unknown',
      message: `peerbroker: session '${call.session}' is unknown or expired on node '${self.nodeId}'`,
    };
  }
  let owner: PeerEntry | undefined;
  for (let i = 0; i < peers.length; i++) if (peers[i].nodeId === call.sessionOwner) owner = peers[i];
  if (!owner || owner.status === 'OFFLINE' || owner.status === 'LEAVING') {
    return {
      kind: 'reject',
      code: status.FAILED_PRECONDITION,
      reason: 'session-owner-offline',
      message:
        `peerbroker: session owner '${call.sessionOwner}' is off-line: the session's state was on that node ` +
        'and is lost; start a new session',
    };
  }
  if (!canMove) {
    return {
      kind: 'reject',
      code: status.FAILED_PRECONDITION,
      reason: 'session-elsewhere',
      message: `peerbroker: session belongs to node '${owner.nodeId}' and this client does not follow redirects`,
    };
  }
  return redirect(owner, 'session');
}

function notHosted(call: CallInfo, self: SelfState, why: string): Decision {
  return {
    kind: 'reject',
    code: status.UNIMPLEMENTED,
    reason: 'not-hosted',
    message: `peerbroker: service '${call.service}' is not hosted on node '${self.nodeId}'; ${why}`,
  };
}

// A pinned call cannot go elsewhere: when the owner's queue is full it is refused, not queued.
function pinnedOverloaded(call: CallInfo, self: SelfState): Decision {
  return {
    kind: 'reject',
    code: status.RESOURCE_EXHAUSTED,
    reason: 'session-overloaded',
    message:
      `peerbroker: node '${self.nodeId}' is at capacity (${self.running} running, ${self.queued} queued) ` +
      `and the call belongs to session '${call.session}', which only this node can serve; it did not run`,
  };
}

// 6. Overload: nothing ran, and no location is given.
function overloaded(self: SelfState): Decision {
  return {
    kind: 'reject',
    code: status.RESOURCE_EXHAUSTED,
    reason: 'overloaded',
    message:
      `peerbroker: node '${self.nodeId}' is at capacity (${self.running} running, ` +
      `${self.queued} queued) and no peer can take the call`,
  };
}
