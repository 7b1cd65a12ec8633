import { LoadCounters } from '../cluster';

/**
 * At most `capacity` handlers run at once; up to `maxQueue` more wait in FIFO order.
 * Load is (running + queued) / capacity, capped at 1, plus any sampled meter. The
 * counts live in shared memory, where the reporter thread reads them.
 */
export class Admission {
  private readonly queue: Array<Waiting | undefined> = [];
  private head = 0;
  private readonly onCross: (above: boolean) => void;
  private above = false;
  readonly counters: LoadCounters;

  constructor(
    public capacity: number,
    public maxQueue: number,
    public threshold: number,
    onCross: (above: boolean) => void,
    counters: LoadCounters = new LoadCounters(),
  ) {
    this.onCross = onCross;
    this.counters = counters;
  }

  /** Handlers running now. */
  get running(): number {
    return this.counters.running;
  }
  set running(v: number) {
    this.counters.running = v;
  }
  /** Calls waiting, cancelled ones excluded. */
  get queued(): number {
    return this.counters.queued;
  }
  set queued(v: number) {
    this.counters.queued = v;
  }
  /** Highest load of the sampled meters, 0..1. */
  get meterLoad(): number {
    return this.counters.meterLoad;
  }
  set meterLoad(v: number) {
    this.counters.meterLoad = v;
  }

  /** Load at this moment, 0..1. */
  load(): number {
    const l = (this.running + this.queued) / this.capacity;
    const m = l > this.meterLoad ? l : this.meterLoad;
    return m > 1 ? 1 : m;
  }

  /** True when every slot is busy and the queue is full. */
  full(): boolean {
    return this.running >= this.capacity && this.queued >= this.maxQueue;
  }

  /**
   * Runs `start` now if a slot is free, else queues it. Returns a handle whose
   * `cancel()` drops a queued call (cancelled or past its deadline).
   */
  admit(start: () => void): Waiting | undefined {
    if (this.running < this.capacity) {
      this.running++;
      this.check();
      start();
      return undefined;
    }
    const w = new Waiting(start, this);
    this.queue.push(w);
    this.queued++;
    this.check();
    return w;
  }

  /** A running call finished: start the next waiting one. */
  release(): void {
    this.running--;
    while (this.head < this.queue.length) {
      const w = this.queue[this.head];
      this.queue[this.head++] = undefined;
      if (w && !w.cancelled) {
        this.queued--;
        this.running++;
        w.started = true;
        this.compact();
        w.start();
        return;
      }
    }
    this.compact();
    this.check();
  }

  /** @internal */
  dropWaiting(): void {
    this.queued--;
    this.check();
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    } else if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
  }

  // A report goes out at once when load crosses the threshold (DESIGN.md).
  private check(): void {
    const above = this.load() >= this.threshold;
    if (above !== this.above) {
      this.above = above;
      this.onCross(above);
    }
  }
}

/** A call waiting for a slot. */
export class Waiting {
  cancelled = false;
  started = false;
  constructor(
    readonly start: () => void,
    private readonly owner: Admission,
  ) {}
  /** Drops the call from the queue if it has not started. */
  cancel(): void {
    if (this.cancelled || this.started) return;
    this.cancelled = true;
    this.owner.dropWaiting();
  }
}
