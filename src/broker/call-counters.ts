import { MAX_REPORT_REDIRECTS, type RedirectCount } from '../cluster';
import type { RedirectReason } from '../wire';

/** What the gate did with a call, as the metrics name it. */
export type CallDecision = 'local' | 'redirect' | 'forward' | 'reject';

/**
 * What the gate did with the calls of one method, since start: plain numbers, made once at
 * addService and read by the metrics at scrape time, so the gate never calls prom-client.
 * A call let in to run here costs one increment; the others (redirected, forwarded,
 * refused: off the local path) a map update by reason.
 */
export class MethodCounts {
  /** Calls let in to run here (started at once or queued). */
  local = 0;
  /** Calls answered with a redirect, by reason (`load`, `session`, ...). */
  readonly redirect = new Map<string, number>();
  /** Calls relayed to a peer for a plain client, by reason. */
  readonly forward = new Map<string, number>();
  /** Calls refused, by reason (`overloaded`, `max-sessions`, ...). */
  readonly reject = new Map<string, number>();

  constructor(
    readonly service: string,
    readonly method: string,
  ) {}

  /** Counts a call that did not run here. */
  count(decision: Exclude<CallDecision, 'local'>, reason: string): void {
    const m = this[decision];
    m.set(reason, (m.get(reason) ?? 0) + 1);
  }
}

/** Most target nodes counted one by one; calls to others count under `other` (ids come and go over a long life). */
export const MAX_TARGETS = 2_048;

const REASONS: readonly RedirectReason[] = ['load', 'service', 'session', 'draining', 'unhealthy'];

type ByReason = Record<RedirectReason, number>;
const byReason = (): ByReason => ({ load: 0, service: 0, session: 0, draining: 0, unhealthy: 0 });

/** The calls sent to one node since start: redirect answers and forwarded calls, by reason. */
export interface SentTo {
  readonly redirect: ByReason;
  readonly forward: ByReason;
}

/**
 * The counts of every method wrapped by a gate, and where it sent calls: one table of
 * target × reason (a look-up and an increment per call sent away), from which the metrics'
 * totals by target and the reports' redirect counts are made when they are read.
 */
export class CallCounters {
  readonly methods: MethodCounts[] = [];
  /** Calls sent away, by target node (at most MAX_TARGETS of them, then `other`). */
  readonly sent = new Map<string, SentTo>();
  /** Calls sent away since start: moves whenever `sent` does. */
  private sentTotal = 0;
  private listed?: { at: number; list: RedirectCount[] };
  private reportedAt = 0;

  /** The counts of a method, made once when its handler is wrapped. */
  method(service: string, method: string): MethodCounts {
    const m = new MethodCounts(service, method);
    this.methods.push(m);
    return m;
  }

  /** Counts a call sent to `nodeId` for `reason` (a redirect answer, or a call forwarded). */
  sentTo(kind: 'redirect' | 'forward', nodeId: string, reason: RedirectReason): void {
    let t = this.sent.get(nodeId);
    if (t === undefined) t = this.target(nodeId);
    t[kind][reason]++;
    this.sentTotal++;
  }

  private target(nodeId: string): SentTo {
    const key = this.sent.size < MAX_TARGETS ? nodeId : 'other';
    let t = this.sent.get(key);
    if (t === undefined) this.sent.set(key, (t = { redirect: byReason(), forward: byReason() }));
    return t;
  }

  /** Calls of `kind` sent to each target, all reasons together (for the metrics, at scrape time). */
  totalsByTarget(kind: 'redirect' | 'forward'): Map<string, number> {
    const out = new Map<string, number>();
    for (const [target, t] of this.sent) {
      let n = 0;
      for (const r of REASONS) n += t[kind][r];
      if (n > 0) out.set(target, n);
    }
    return out;
  }

  /**
   * Calls redirected or forwarded since start by target and reason, the largest first, as
   * many as a report may carry: what this node's reports and its cluster page show. Made
   * again only after calls were sent since the last time.
   */
  redirectList(): RedirectCount[] {
    if (this.listed?.at === this.sentTotal) return this.listed.list;
    const all: RedirectCount[] = [];
    for (const [toNode, t] of this.sent) {
      for (const reason of REASONS) {
        const count = t.redirect[reason] + t.forward[reason];
        if (count > 0) all.push({ toNode, reason, count });
      }
    }
    const list = all.length <= MAX_REPORT_REDIRECTS ? all : all.sort((a, b) => b.count - a.count).slice(0, MAX_REPORT_REDIRECTS);
    this.listed = { at: this.sentTotal, list };
    return list;
  }

  /** True once after calls were sent away since the last call: the reporter should hear the new counts. */
  takeChanged(): boolean {
    const changed = this.reportedAt !== this.sentTotal;
    this.reportedAt = this.sentTotal;
    return changed;
  }
}
