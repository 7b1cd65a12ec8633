/**
 * A timer that runs `fn` every `everyMs()` ms, reading the interval anew each time, so
 * a period changed at run time (`config set period-ms`) applies from the next tick.
 * `fn` is told how late the tick came (how long the event loop could not run it).
 * Unref'd unless `unref` is false (a worker thread that must stay alive while it ticks).
 * Shared by the broker's control timers and the control plane's hand-over tick.
 */
export class PeriodicTimer {
  private timer?: NodeJS.Timeout;
  private dueAt = 0;

  constructor(
    private readonly everyMs: () => number,
    private readonly fn: (lateMs: number) => void,
    private readonly unref = true,
  ) {}

  start(): void {
    this.schedule();
  }

  /** Applies a new interval now rather than at the next tick (a long old interval could still be pending). */
  reschedule(): void {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.schedule();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    const ms = this.everyMs();
    this.dueAt = performance.now() + ms;
    const timer = setTimeout(() => {
      const late = Math.max(0, performance.now() - this.dueAt);
      this.fn(late);
      // Not when `fn` stopped this timer or rescheduled it (which started the next tick itself).
      if (this.timer === timer) this.schedule();
    }, ms);
    this.timer = timer;
    if (this.unref) timer.unref();
  }
}
