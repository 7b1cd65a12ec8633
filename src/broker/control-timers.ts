import type { PeerView } from '../cluster';
import type { Logger } from '../log';
import { PeriodicTimer } from '../timers';

/**
 * The off-line sweep, every half period. A node whose own event loop stalled (SIGSTOP,
 * a handler blocking it) runs this timer before it reads the reports that arrived
 * meanwhile, and every peer looks silent: after a tick over half a period late it
 * judges nobody for one period, by when the queued reports have been read and every live
 * peer has reported again. Then it judges at least once before holding again, so a
 * loop that is late all the time still marks dead peers off-line.
 */
export class PeerSweep {
  private readonly timer: PeriodicTimer;
  private holdUntil = -Infinity;
  private holding = false;
  private lastLogAt = -Infinity;

  constructor(
    private readonly peers: PeerView,
    private readonly periodMs: () => number,
    /** Runs after every sweep (sessions, takeover reconcile). */
    private readonly after: () => void,
    private readonly log: Logger,
  ) {
    this.timer = new PeriodicTimer(() => Math.max(10, this.periodMs() / 2), (late) => this.tick(late));
  }

  start(): void {
    this.timer.start();
  }

  /** The period changed. */
  reschedule(): void {
    this.timer.reschedule();
  }

  stop(): void {
    this.timer.stop();
  }

  /** The reporter could not read for `lateMs` (its thread was starved or stopped): judge nobody for a period. */
  reporterStalled(lateMs: number): void {
    this.hold('reporter', lateMs);
  }

  private hold(who: 'main loop' | 'reporter', lateMs: number): void {
    if (this.holding) return;
    this.holding = true;
    const now = performance.now();
    this.holdUntil = now + this.periodMs();
    // A loop late all the time holds every other tick: one line every 10 s is enough.
    if (now - this.lastLogAt < 10_000) return;
    this.lastLogAt = now;
    this.log.info({ lateMs: Math.round(lateMs) }, `${who} was stalled: judging no peer until the reports that arrived meanwhile are read`);
  }

  private tick(lateMs: number): void {
    const now = performance.now();
    if (lateMs > this.periodMs() / 2) this.hold('main loop', lateMs);
    const judge = now >= this.holdUntil;
    if (judge) this.holding = false;
    this.peers.sweep(now, judge);
    this.after();
  }
}

/**
 * The least time between two urgent reports, ms: a fiftieth of the period, 10 ms at least,
 * and 1 ms per peer (every peer decodes every report, so each node receives at most about a
 * thousand urgent reports a second whatever the cluster's size). At the default period,
 * 10 ms: bench/sim and the saturation bench chose it over 25 (docs/design.md).
 */
export function urgentGapMs(periodMs: number, peers: number): number {
  return Math.max(10, periodMs / 50, peers);
}

/**
 * A report sent at once: on a threshold crossing, or a load that moved a step, coalesced
 * within one turn of the loop. At most one every `gapMs()` (the broker: `urgentGapMs`).
 * A change inside the gap is reported when the gap ends.
 */
export class UrgentReport {
  private timer?: NodeJS.Timeout;
  private lastAt = -Infinity;

  constructor(
    private readonly gapMs: () => number,
    private readonly send: () => void,
  ) {}

  /** A report is due: sent at once, or when the gap since the last one ends. */
  request(): void {
    if (this.timer) return;
    const wait = Math.max(0, this.lastAt + this.gapMs() - performance.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.lastAt = performance.now();
      this.send();
    }, wait);
    this.timer.unref();
  }

  /** Drops a report still waiting. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
