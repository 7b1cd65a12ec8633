import { HEARTBEAT_MS, LoopDelay, type LoadCounters, type LoadMeter } from '../cluster';

/**
 * Keeps the shared counters fresh from the main thread: a heartbeat every 20 ms (its
 * lateness is the loop delay the reporter thread sees), and once a period the meters,
 * the measured loop delay and the call counts.
 */
export class MainLoopSampler {
  private timer?: NodeJS.Timeout;
  private ticks = 0;
  private readonly delay = new LoopDelay();
  /** The last period's p99 main-loop delay, ms. */
  lastDelayMs = 0;

  constructor(
    private readonly counters: LoadCounters,
    private readonly meters: LoadMeter[],
    private readonly periodMs: () => number,
    private readonly calls: () => { run: number; redirected: number },
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.tick(), HEARTBEAT_MS);
    this.timer.unref();
  }

  private tick(): void {
    const c = this.counters;
    c.heartbeat = Date.now();
    const calls = this.calls();
    c.callsRun = calls.run;
    c.callsRedirected = calls.redirected;
    if (++this.ticks * HEARTBEAT_MS >= this.periodMs()) {
      this.ticks = 0;
      this.sample();
    }
  }

  /** Samples the meters and the loop delay now. */
  sample(): void {
    let load = 0;
    for (const m of this.meters) load = Math.max(load, m.sample());
    this.counters.meterLoad = load;
    this.lastDelayMs = this.delay.take();
    this.counters.loopDelayMs = this.lastDelayMs;
    this.counters.heartbeat = Date.now();
  }

  stop(): void {
    clearInterval(this.timer);
    this.delay.close();
    for (const m of this.meters) m.close?.();
  }
}
