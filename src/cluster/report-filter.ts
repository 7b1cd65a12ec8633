import type { ClusterKey } from './cluster-key';
import { DEFAULT_MAX_PEERS } from './peer-view';
import { checkReportFields, isRejected, type DropReason, type LoadReport, type ReportExpectations } from './report-codec';
import { openReport } from './report-signing';

/**
 * Time per second (ms) the reporter thread may spend reading one known peer's subject;
 * past it the rest of the tick is dropped unread. A real node's reports cost well under
 * 1 ms a second; 50 ms reads some 25 000 garbage messages or 20 of the largest reports.
 */
export const SUBJECT_BUDGET_MS_PER_SEC = 50;
/** Time per second (ms) spent reading subjects of nodes not (yet) known, all of them together. */
export const NEWCOMER_BUDGET_MS_PER_SEC = 50;
/** Time per second (ms) spent reading load subjects at all: a quarter of a core at most. */
export const TOTAL_BUDGET_MS_PER_SEC = 250;
/** Longest a small message can take to read, ms (a fixed part, and one per byte: 64 KB, about 6.5 ms). */
const MAX_READ_MS = 0.05;
const MAX_READ_MS_PER_BYTE = 1e-4;
/** Most node ids the filter remembers as known: as many as the peer table holds. */
export const MAX_KNOWN_SUBJECTS = DEFAULT_MAX_PEERS;

/** What the filter remembers of a known node. */
interface Known {
  /** Wall time of its last good report. */
  at: number;
  incarnation: number;
  seq: number;
}

/** How many messages were dropped for one reason in a tick, and the last subject token and detail, for the log. */
export interface DropTally {
  count: number;
  node: string;
  detail?: string;
}

/**
 * What the reporter hands the main thread once per tick: at most the latest report of
 * each peer, what was dropped (counted by reason), and the known peers whose subject
 * carried more than its budget (their silence proves nothing this tick).
 */
export interface ReportBatch {
  reports: LoadReport[];
  /**
   * When each report was read (`readClock()` ms), in the order of `reports`: what it says is
   * as old as that, and redirects sent since are not in it. Absent: read just now.
   */
  readAt?: number[];
  drops: Partial<Record<DropReason, DropTally>>;
  flooded: string[];
  /** Set when the reporter's tick came this late (ms, over half a period): it could not read meanwhile. */
  lateMs?: number;
}

/** Options of the filter. */
export interface ReportFilterOptions extends ReportExpectations {
  /** Length of the first budget window, ms (see `budgetWindowMs`); `take` may change it. */
  windowMs: number;
  /** With a key, only reports whose signature verifies are read. */
  key?: ClusterKey;
  /** Node ids known before this filter started (a restarted reporter keeps its peers). */
  known?: readonly string[];
  /** Monotonic clock, ms, that reading is timed with. Default `performance.now`. */
  clock?: () => number;
  /** When a report was read, ms on a clock every thread of the process shares. Default `readClock`. */
  stamp?: () => number;
}

/**
 * A clock in ms that the main thread and the reporter thread read alike and that no wall
 * clock step moves (each thread's own start plus its monotonic time since).
 */
export function readClock(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Where messages from the load subjects are read, on the reporter thread: size,
 * signature, decoding and the checks that need no memory are done here, so a flood
 * is dropped before it reaches the main thread. What one subject may cost, in time spent
 * reading it, is capped: a known peer's subject gets `SUBJECT_BUDGET_MS_PER_SEC`, all
 * other subjects share `NEWCOMER_BUDGET_MS_PER_SEC`, and all together
 * `TOTAL_BUDGET_MS_PER_SEC`; the rest is dropped unread (`rate-limited`) and a known peer
 * whose messages were dropped so is reported `flooded` for the tick.
 * Memory is bounded by the known ids (`MAX_KNOWN_SUBJECTS`) and one report per known id.
 */
export class ReportFilter {
  /** Known node id → wall time, incarnation and seq of its newest good report (none for ids handed in at start). */
  private readonly known = new Map<string, Known>();
  /** Time (ms) spent this tick reading each known subject. */
  private readonly spent = new Map<string, number>();
  private newcomersSpent = 0;
  private totalSpent = 0;
  private readonly clock: () => number;
  private readonly stamp: () => number;
  /** The budgets' window, ms, and when the current one began (clock ms). */
  private windowMs: number;
  private windowStartedAt: number;
  private readonly pending = new Map<string, { report: LoadReport; readAt: number }>();
  private drops: Partial<Record<DropReason, DropTally>> = {};
  private readonly flooded = new Set<string>();
  private lastPurge = 0;

  constructor(private readonly opts: ReportFilterOptions) {
    this.windowMs = opts.windowMs;
    this.clock = opts.clock ?? (() => performance.now());
    this.stamp = opts.stamp ?? readClock;
    this.windowStartedAt = this.clock();
    const now = Date.now();
    for (const id of opts.known ?? []) if (this.known.size < MAX_KNOWN_SUBJECTS) this.known.set(id, { at: now, incarnation: -1, seq: -1 });
  }

  /** A message that arrived on the load subject of `token` at wall time `wallNow`. */
  offer(token: string, data: Uint8Array, wallNow: number): void {
    const known = this.known.has(token);
    const spent = known ? (this.spent.get(token) ?? 0) : this.newcomersSpent;
    const now = this.clock();
    if (spent >= this.budget(known ? SUBJECT_BUDGET_MS_PER_SEC : NEWCOMER_BUDGET_MS_PER_SEC, now) || this.totalSpent >= this.budget(TOTAL_BUDGET_MS_PER_SEC, now)) {
      if (known) this.flooded.add(token);
      return this.drop('rate-limited', token);
    }
    this.read(token, data, wallNow);
    // Timed, but no more than reading that many bytes can take: a thread that was
    // descheduled meanwhile (a busy machine) does not charge the wait to the subject.
    const cost = Math.min(this.clock() - now, MAX_READ_MS + data.length * MAX_READ_MS_PER_BYTE);
    this.totalSpent += cost;
    if (known) this.spent.set(token, spent + cost);
    else this.newcomersSpent += cost;
  }

  private read(token: string, data: Uint8Array, wallNow: number): void {
    const r = openReport(data, this.opts.key);
    if (isRejected(r)) return this.drop(r.reason, token, r.message);
    const reason = checkReportFields(r, token, this.opts, wallNow);
    if (reason) return this.drop(reason, token);
    // Older than one already read: a replay, dropped here. A newer one takes the place of
    // the one waiting for the tick, which the main thread would only have overwritten.
    const last = this.known.get(token);
    if (last && r.incarnation < last.incarnation) return this.drop('old-incarnation', token);
    if (last && r.incarnation === last.incarnation && r.seq <= last.seq) return this.drop('replay', token);
    this.pending.set(token, { report: r, readAt: this.stamp() });
    if (last || this.known.size < MAX_KNOWN_SUBJECTS) this.known.set(token, { at: wallNow, incarnation: r.incarnation, seq: r.seq });
  }

  /**
   * What arrived since the last call (undefined when nothing did). The reading budgets start
   * again once `windowMs` has passed since they last did: hand-overs may come more often than
   * that without letting a burst through in bigger pieces.
   */
  take(wallNow: number, windowMs: number): ReportBatch | undefined {
    const now = this.clock();
    this.windowMs = windowMs;
    if (now - this.windowStartedAt >= windowMs) {
      this.windowStartedAt = now;
      this.spent.clear();
      this.newcomersSpent = 0;
      this.totalSpent = 0;
    }
    // Ids silent for longer than a report may be old are forgotten, once a second at most.
    if (wallNow - this.lastPurge > 1_000) {
      this.lastPurge = wallNow;
      for (const [id, k] of this.known) if (wallNow - k.at > this.opts.maxAgeMs) this.known.delete(id);
    }
    if (this.pending.size === 0 && this.flooded.size === 0 && Object.keys(this.drops).length === 0) return undefined;
    const reports: LoadReport[] = [];
    const readAt: number[] = [];
    for (const p of this.pending.values()) {
      reports.push(p.report);
      readAt.push(p.readAt);
    }
    const batch: ReportBatch = { reports, readAt, drops: this.drops, flooded: [...this.flooded] };
    this.pending.clear();
    this.flooded.clear();
    this.drops = {};
    return batch;
  }

  // What `perSec` allows in this window so far, ms: a window that runs long (the thread was
  // busy) allows for the time it really lasted, so a peer's reports are not lost to a slow tick.
  private budget(perSec: number, now: number): number {
    return (perSec * Math.max(this.windowMs, now - this.windowStartedAt)) / 1000;
  }

  private drop(reason: DropReason, token: string, detail?: string): void {
    const t = (this.drops[reason] ??= { count: 0, node: '' });
    t.count++;
    // A hostile token can be long: keep only its start for the log.
    t.node = token.length > 64 ? `${token.slice(0, 64)}...` : token;
    if (detail !== undefined) t.detail = detail;
  }
}

/**
 * The tick of the reporter, when it hands what it read to the main thread: a hundredth of a
 * period, 5 to 50 ms. A report waits for it, and decisions meanwhile go by the one before:
 * at the default period's 5 ms, a tenth of a 50 ms call (bench/sim: 25 ms cost the per-call
 * follower 5-10 % of p99 at 70 % load).
 */
export function tickMs(periodMs: number): number {
  return Math.min(50, Math.max(5, Math.round(periodMs / 100)));
}

/**
 * The window of the reading budgets: a twentieth of a period, 10 to 50 ms (what the tick was
 * before it became a hundredth). A burst is read up to a window's budget, whatever the tick.
 */
export function budgetWindowMs(periodMs: number): number {
  return Math.min(50, Math.max(10, Math.round(periodMs / 20)));
}
