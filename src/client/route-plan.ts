import type { Advice } from '../wire';

/** Default: at most one advice is taken per this long, ms, so the loads can show its effect first. */
export const DEFAULT_ADVICE_SETTLE_MS = 100;
/** Default: how far one advice moves the shares, 0..1 (the first advice is taken whole). */
export const DEFAULT_ADVICE_STEP = 0.5;
/** An ask that brought no advice is repeated after this long, ms. */
const ADVICE_RETRY_MS = 1_000;
/** Shares below this are dropped. */
const MIN_SHARE = 0.01;
/** Most endpoints a plan holds (an advice names at most 8; older ones fade out). */
const MAX_ENTRIES = 16;

interface Entry {
  share: number;
  /** Smooth weighted round-robin's running credit. */
  credit: number;
}

/**
 * Where a stub sends the first attempt of its calls: the origin until a node advises a
 * spread (`peerbroker-advice`), then the advised endpoints in turn, by share (smooth
 * weighted round-robin: the calls of each endpoint come evenly spaced, not in clumps).
 * An advice moves the shares part of the way, at most once per settle time; it holds for
 * its ttl, and while it holds the stub asks for a fresh one every tenth of it, so the spread
 * follows the loads without a redirect. Bounded: at most 16 endpoints.
 */
export class RoutePlan {
  private readonly entries = new Map<string, Entry>();
  private expiresAt = 0;
  private refreshAt = 0;
  private appliedAt = -Infinity;
  private askedAt = -Infinity;

  constructor(
    private readonly origin: string,
    private readonly settleMs = DEFAULT_ADVICE_SETTLE_MS,
    private readonly step = DEFAULT_ADVICE_STEP,
  ) {}

  /** True while an advice holds: calls go out by the plan. */
  holds(now: number): boolean {
    return this.entries.size > 0 && now < this.expiresAt;
  }

  /** The endpoint the next call goes to, at local time `now` (ms). */
  next(now: number): string {
    if (this.entries.size === 0) return this.origin;
    if (now >= this.expiresAt) {
      this.entries.clear();
      return this.origin;
    }
    let best: Entry | undefined;
    let bestEndpoint = this.origin;
    let total = 0;
    for (const [endpoint, e] of this.entries) {
      e.credit += e.share;
      total += e.share;
      if (!best || e.credit > best.credit) {
        best = e;
        bestEndpoint = endpoint;
      }
    }
    best!.credit -= total;
    return bestEndpoint;
  }

  /**
   * True when the next call should ask for advice (`peerbroker-advise-me`): the one held is
   * due for a refresh. A stub without a plan never asks: it learns of the need to spread from
   * a redirect, so calls stay on the origin while it takes them. One ask at a time: the next
   * comes a second later at the earliest if no answer brought advice.
   */
  wantsAdvice(now: number): boolean {
    if (!this.holds(now) || now < this.refreshAt || now - this.askedAt < ADVICE_RETRY_MS) return false;
    this.askedAt = now;
    return true;
  }

  /** Takes an advice received at `now`; endpoints that are not members (`isMember`) are left out. */
  apply(advice: Advice, now: number, isMember: (endpoint: string) => boolean): void {
    // A plan past its ttl (not yet cleared by `next`) is not blended into the new one.
    if (now >= this.expiresAt) this.entries.clear();
    this.askedAt = -Infinity;
    this.expiresAt = now + advice.ttlMs;
    this.refreshAt = now + advice.ttlMs / 10;
    if (now - this.appliedAt < this.settleMs) return;
    const shares = advice.shares.filter((s) => isMember(s.endpoint));
    const total = shares.reduce((sum, s) => sum + s.share, 0);
    if (total <= 0) return;
    this.appliedAt = now;
    const step = this.entries.size === 0 ? 1 : this.step;
    for (const e of this.entries.values()) e.share *= 1 - step;
    for (const s of shares) {
      const e = this.entries.get(s.endpoint);
      if (e) e.share += (step * s.share) / total;
      else this.entries.set(s.endpoint, { share: (step * s.share) / total, credit: 0 });
    }
    this.prune();
  }

  /** `endpoint` could not be reached: it gets no calls until an advice names it again. */
  drop(endpoint: string): void {
    this.entries.delete(endpoint);
  }

  /** The shares held now, by endpoint (for tests and status). */
  shares(): Record<string, number> {
    return Object.fromEntries([...this.entries].map(([k, e]) => [k, e.share]));
  }

  // Drops what faded out, keeps the largest MAX_ENTRIES, and makes the rest add up to 1.
  private prune(): void {
    let list = [...this.entries].filter(([, e]) => e.share >= MIN_SHARE);
    if (list.length > MAX_ENTRIES) list = list.sort((a, b) => b[1].share - a[1].share).slice(0, MAX_ENTRIES);
    const total = list.reduce((sum, [, e]) => sum + e.share, 0);
    this.entries.clear();
    for (const [k, e] of list) this.entries.set(k, { share: e.share / total, credit: e.credit });
  }
}
