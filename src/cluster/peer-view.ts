import { EventEmitter } from 'node:events';
import type { PeerEntry, PeerStatus } from '../policy';
import { DROP_REASONS, type DropReason, type LoadReport, type RedirectCount } from './report-codec';

/** Default most peers a node keeps (on-line and off-line together); see `PeerViewOptions.maxPeers`. */
export const DEFAULT_MAX_PEERS = 1024;

/** Accounted flow below this is gone (an exponential fade never reaches 0 by itself). */
const FLOW_GONE = 1e-4;
/** `fadeExtras` skips a pass that comes within this share of tau of the last one: the flows moved by under 1 %. */
const FADE_STEP = 0.01;

/**
 * Redirects remembered per peer (their local times): a report read some time before it is
 * applied counted none sent since, which are found here. Past this many in that time, the
 * oldest of them count as in the report (the peer's load is underestimated by them).
 */
export const RECENT_REDIRECTS = 32;

/** A peer with everything its last report said. */
export interface PeerRecord extends PeerEntry {
  /** Load from the last report, 0..1 (for people: a full node reads 1); decisions compare `occupancy`. */
  load: number;
  /** Calls running there at the last report (`in_flight`: queued ones are in `queued`). */
  inFlight: number;
  incarnation: number;
  seq: number;
  endpoints: string[];
  queued: number;
  loopDelayMs: number;
  callsRun: number;
  callsRedirected: number;
  /** The peer may adopt endpoints of peers that go off-line. */
  takeover: boolean;
  /** Base URL of its HTTP listener, or ''. */
  httpUrl: string;
  /** Calls it redirected since its start, by target and reason. */
  redirects: RedirectCount[];
  /** Local time (ms, monotonic) the peer went off-line; 0 while it reports. */
  offlineSince: number;
  /** Local time its current on-line run began (first report, back from off-line, or a new incarnation). */
  onlineSince: number;
  /** Reports accepted in the current on-line run. */
  reportsSinceOnline: number;
  /** Local time its subject last carried more than the reporter could read (a flood): silence is not proven since. */
  floodedAt?: number;
  /** This node's redirected calls estimated running there, in load units (see `account`). */
  flow: number;
  /** When `flow` was last faded, local monotonic ms. */
  flowAt: number;
  /** `flow` when the last report was applied, less the redirects sent after it was read: the report counted the rest. */
  flowAtReport: number;
  /** In the view's list of peers whose flow still fades. */
  flowing: boolean;
  /** Local times of the last `RECENT_REDIRECTS` redirects sent there (a ring; made at the first). */
  recent?: Float64Array;
  /** Redirects sent there so far: the next goes to `recent[sent % RECENT_REDIRECTS]`. */
  sent?: number;
}

/** Options of the peer view; all durations in ms. */
export interface PeerViewOptions {
  /** Missed periods before a silent peer is off-line. Default 3. */
  offlineAfterPeriods: number;
  /** Off-line peers are forgotten after this long. Default 60 000. */
  forgetAfterMs: number;
  /**
   * Most peers kept, on-line and off-line together. Default `DEFAULT_MAX_PEERS` (1024), the
   * number of ids the reporter thread remembers too; smaller in tests. A new id past it takes
   * the place of the peer off-line longest; with none off-line it is dropped (`peer-limit`)
   * and known peers are unaffected.
   */
  maxPeers?: number;
}

/** Events of the peer view: a typed stream of membership changes, not log lines. */
export interface PeerViewEvents {
  online: [peer: PeerRecord];
  offline: [peer: PeerRecord];
  left: [peer: PeerRecord];
  dropped: [reason: DropReason, nodeId: string | undefined];
}

/**
 * Membership and load of every peer, from their reports. The policy reads `peers`
 * (an array updated in place) on every call; this class is the only writer. Reports come
 * checked by the reporter thread (report-filter.ts: fields, age, order per subject); the
 * view checks only what needs its own memory: incarnation and order against the peers it
 * knows and those it buried, which a restarted reporter does not remember.
 */
export class PeerView extends EventEmitter<PeerViewEvents> {
  /** Every known peer, off-line ones included until forgotten. Never replaced, only mutated. */
  readonly peers: PeerRecord[] = [];
  private readonly byId = new Map<string, PeerRecord>();
  /** Where each peer sits in `peers`, so removal is O(1) (swap with the last). */
  private readonly slot = new Map<string, number>();
  /** Off-line peers, longest off-line first: the first to give way when the table is full. */
  private readonly offline = new Map<string, PeerRecord>();
  // Last incarnation and seq of peers that left or were forgotten, so a replay cannot
  // revive them; at most 4 × maxPeers, the oldest forgotten first.
  private readonly tombstones = new Map<string, { incarnation: number; seq: number; at: number }>();
  private readonly maxPeers: number;
  /** Reports dropped, by reason. */
  readonly dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  /** Peers with accounted flow left to fade: the few this node redirected to lately. */
  private readonly flows: PeerRecord[] = [];
  /** The fading time last given to `account` or `fadeExtras`, ms. */
  private tauMs = Infinity;
  /** When `fadeExtras` last faded the flows, local monotonic ms. */
  private fadedAt = -Infinity;

  constructor(private readonly opts: PeerViewOptions) {
    super();
    this.maxPeers = opts.maxPeers ?? DEFAULT_MAX_PEERS;
  }

  /** Counts `count` messages that never became reports (bad bytes or bad fields, or read by the reporter and dropped there). */
  drop(reason: DropReason, nodeId?: string, count = 1): void {
    this.dropped[reason] += count;
    this.emit('dropped', reason, nodeId);
  }

  /** The reporter could not read all of `nodeId`'s subject at local time `now` (a flood): its silence is not proven. */
  flooded(nodeId: string, now: number): void {
    const p = this.byId.get(nodeId);
    if (p && p.status !== 'OFFLINE') p.floodedAt = now;
  }

  /**
   * Applies a report the reporter thread read (at local time `readAt`) and checked, at local
   * time `now` (monotonic ms). Returns the reason when it was dropped.
   */
  apply(r: LoadReport, now: number, readAt = now): DropReason | undefined {
    const reason = this.check(r);
    if (reason) {
      this.drop(reason, r.nodeId);
      return reason;
    }
    let p = this.byId.get(r.nodeId);
    if (!p && r.status !== 'LEAVING' && !this.makeRoom(now)) {
      this.drop('peer-limit', r.nodeId);
      return 'peer-limit';
    }
    if (r.status === 'LEAVING') {
      this.bury(r.nodeId, { incarnation: r.incarnation, seq: r.seq, at: now });
      if (p) {
        this.remove(p, now);
        this.emit('left', p);
      }
      return undefined;
    }
    const wasOnline = p !== undefined && p.status !== 'OFFLINE';
    if (!p) {
      p = {
        nodeId: r.nodeId,
        services: new Set(r.services),
        ...reportedFields(r, now),
        onlineSince: now,
        reportsSinceOnline: 0,
        flow: 0,
        flowAt: now,
        flowAtReport: 0,
        flowing: false,
      };
      this.byId.set(p.nodeId, p);
      this.slot.set(p.nodeId, this.peers.length);
      this.peers.push(p);
    } else {
      if (!wasOnline || r.incarnation !== p.incarnation) {
        p.onlineSince = now;
        p.reportsSinceOnline = 0;
      }
      this.offline.delete(p.nodeId);
      // The report counts the calls this node sent there before it was read: accounting starts
      // again from here, from the flow as it is now (faded since the last redirect), less the
      // calls sent after the reporter thread read it (up to a tick ago), which stay extra.
      if (p.flowing) this.fadeTo(p, now);
      const since = readAt < now ? this.sentSince(p, readAt, now) : 0;
      p.flowAtReport = p.flow - since;
      if (!sameMembers(p.services, r.services)) p.services = new Set(r.services);
      Object.assign(p, reportedFields(r, now));
      p.extra = since;
    }
    p.reportsSinceOnline++;
    if (!wasOnline) this.emit('online', p);
    return undefined;
  }

  // A new peer needs a place: the one off-line longest gives way when the table is full.
  private makeRoom(now: number): boolean {
    if (this.peers.length < this.maxPeers) return true;
    const oldest = this.offline.values().next();
    if (oldest.done) return false;
    this.remove(oldest.value, now);
    return true;
  }

  // What the reporter thread cannot know: a restarted one starts afresh, and only the view
  // remembers peers that left or were forgotten (a replay must not revive them). Reports older
  // than a tombstone lives (forgetAfterMs) were dropped as expired on the reporter thread.
  private check(r: LoadReport): DropReason | undefined {
    const last = this.byId.get(r.nodeId) ?? this.tombstones.get(r.nodeId);
    if (last) {
      if (r.incarnation < last.incarnation) return 'old-incarnation';
      if (r.incarnation === last.incarnation && r.seq <= last.seq) return 'replay';
    }
    return undefined;
  }

  /**
   * Marks peers silent for `offlineAfterPeriods` periods off-line (unless `judge` is
   * false: this node could not listen meanwhile); forgets long-gone ones.
   */
  sweep(now: number, judge = true): void {
    // Oldest first (insertion order): stop at the first one still young.
    for (const [id, t] of this.tombstones) {
      if (now - t.at <= this.opts.forgetAfterMs) break;
      this.tombstones.delete(id);
    }
    // Backwards: a removal moves the last peer, already seen, into the freed slot.
    for (let i = this.peers.length - 1; i >= 0; i--) {
      const p = this.peers[i];
      if (p.status === 'OFFLINE') {
        if (now - p.offlineSince > this.opts.forgetAfterMs) this.remove(p, now);
      } else if (judge && now - Math.max(p.receivedAt, p.floodedAt ?? -Infinity) > this.opts.offlineAfterPeriods * p.periodMs) {
        p.status = 'OFFLINE';
        p.offlineSince = now;
        this.offline.set(p.nodeId, p);
        this.emit('offline', p);
      }
    }
  }

  /** The peer with this id, if known. */
  get(nodeId: string): PeerRecord | undefined {
    return this.byId.get(nodeId);
  }

  /**
   * Counts a redirect sent to `peer` at local time `now` against its load. `flow` estimates
   * this node's calls still running there: each redirect adds one slot, fading with the mean
   * call time `tauMs` (rate × duration, Little's law). The peer's last report already
   * counted the flow as it was then, so only the change since is added:
   * `extra = flow(now) - flow(report)`. A burst raises it; in a steady stream it stays near
   * 0 instead of counting the same calls twice.
   */
  account(peer: PeerEntry, now: number, tauMs: number): void {
    const p = peer as PeerRecord;
    this.tauMs = tauMs;
    const one = 1 / Math.max(1, p.capacity);
    if (p.flowing) {
      // The gate faded the flows to `now` for its decision just before: no second fade then.
      if (p.flowAt !== now) this.fadeTo(p, now);
      p.flow += one;
    } else {
      p.flowing = true;
      p.flow = one;
      p.flowAt = now;
      p.flowAtReport ??= 0; // a peer made elsewhere (tests, the simulator's fakes) has none
      this.flows.push(p);
    }
    p.extra = p.flow - p.flowAtReport;
    const ring = (p.recent ??= new Float64Array(RECENT_REDIRECTS));
    const n = p.sent ?? 0;
    ring[n % RECENT_REDIRECTS] = now;
    p.sent = n + 1;
  }

  /** What the redirects sent to `p` after `readAt` add to its flow at `now` (they are not in a report read at `readAt`). */
  private sentSince(p: PeerRecord, readAt: number, now: number): number {
    const ring = p.recent;
    if (ring === undefined || !p.flowing) return 0;
    const one = 1 / Math.max(1, p.capacity);
    let sum = 0;
    const n = Math.min(p.sent ?? 0, RECENT_REDIRECTS);
    for (let i = 0; i < n; i++) if (ring[i] > readAt) sum += fade(one, now - ring[i], this.tauMs);
    return Math.min(sum, p.flow);
  }

  /**
   * Fades the accounted flows to time `now` (called before every decision): free while no
   * flow lives, a pass over the peers redirected to lately otherwise, skipped when the last
   * pass was less than a hundredth of `tauMs` ago.
   */
  fadeExtras(now: number, tauMs: number): void {
    const flows = this.flows;
    if (flows.length === 0 || now - this.fadedAt < FADE_STEP * tauMs) return;
    this.tauMs = tauMs;
    this.fadedAt = now;
    for (let i = flows.length - 1; i >= 0; i--) {
      const p = flows[i];
      this.fadeTo(p, now);
      if (p.flow === 0) this.stopFlow(p, i);
    }
  }

  private fadeTo(p: PeerRecord, now: number): void {
    p.flow = fade(p.flow, now - p.flowAt, this.tauMs);
    p.flowAt = now;
    p.extra = p.flow - p.flowAtReport;
  }

  // Out of the list of flows (swapped with the last: the order does not matter).
  private stopFlow(p: PeerRecord, i = this.flows.indexOf(p)): void {
    p.flowing = false;
    const last = this.flows.pop()!;
    if (last !== p) this.flows[i] = last;
  }

  /** Status as a person would read it: `UNKNOWN` when the last report is over two periods old. */
  displayStatus(p: PeerRecord, now: number): PeerStatus | 'UNKNOWN' {
    if (p.status !== 'OFFLINE' && now - p.receivedAt > 2 * p.periodMs) return 'UNKNOWN';
    return p.status;
  }

  private remove(p: PeerRecord, now: number): void {
    if (!this.tombstones.has(p.nodeId)) this.bury(p.nodeId, { incarnation: p.incarnation, seq: p.seq, at: now });
    if (p.flowing) this.stopFlow(p);
    this.byId.delete(p.nodeId);
    this.offline.delete(p.nodeId);
    const i = this.slot.get(p.nodeId);
    this.slot.delete(p.nodeId);
    if (i === undefined) return;
    const last = this.peers.pop()!;
    if (last !== p) {
      this.peers[i] = last;
      this.slot.set(last.nodeId, i);
    }
  }

  private bury(nodeId: string, t: { incarnation: number; seq: number; at: number }): void {
    this.tombstones.delete(nodeId);
    this.tombstones.set(nodeId, t);
    if (this.tombstones.size > 4 * this.maxPeers) this.tombstones.delete(this.tombstones.keys().next().value!);
  }
}

function fade(flow: number, dtMs: number, tauMs: number): number {
  if (flow === 0 || dtMs <= 0 || tauMs === Infinity) return flow;
  const v = flow * Math.exp(-dtMs / tauMs);
  return v < FLOW_GONE ? 0 : v;
}

/** What a report (received at local time `now`) sets in a peer's record. */
function reportedFields(r: LoadReport, now: number) {
  return {
    endpoint: r.endpoint,
    status: r.status,
    load: r.load,
    occupancy: Math.max(r.load, (r.inFlight + r.queued) / Math.max(1, r.capacity)),
    maxQueue: r.maxQueue,
    extra: 0,
    inFlight: r.inFlight,
    capacity: r.capacity,
    receivedAt: now,
    periodMs: r.periodMs,
    incarnation: r.incarnation,
    seq: r.seq,
    endpoints: r.endpoints,
    queued: r.queued,
    loopDelayMs: r.loopDelayMs,
    callsRun: r.callsRun,
    callsRedirected: r.callsRedirected,
    takeover: r.takeover === true,
    httpUrl: r.httpUrl ?? '',
    redirects: r.redirects ?? [],
    offlineSince: 0,
  };
}

function sameMembers(a: ReadonlySet<string>, b: readonly string[]): boolean {
  if (a.size !== b.length) return false;
  for (const s of b) if (!a.has(s)) return false;
  return true;
}
