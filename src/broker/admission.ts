import { LoadCounters } from '../cluster';

// Where a ticket is; a ticket is in at most one of the admission's two lists.
const OUT = 0;
const QUEUED = 1;
const READY = 2;

/**
 * A call that wants a slot. The admission links it into its lists itself (no
 * allocation per queued call beyond the ticket) and calls `start()` once, when
 * the call gets its slot.
 */
export abstract class Ticket {
  /** @internal */
  prev: Ticket | null = null;
  /** @internal */
  next: Ticket | null = null;
  /** @internal OUT, QUEUED or READY. */
  where = OUT;
  /** Runs the call; it must not throw. */
  abstract start(): void;
}

class FnTicket extends Ticket {
  constructor(private readonly fn: () => void) {
    super();
  }
  start(): void {
    this.fn();
  }
}

/** A ticket that runs `fn`, for callers without an object of their own per call. */
export function ticket(fn: () => void): Ticket {
  return new FnTicket(fn);
}

/** What `admit()` did with a call. */
export type Admitted = 'started' | 'queued' | 'full';

/** A doubly linked list of tickets: O(1) append, removal and take-first. */
class TicketList {
  head: Ticket | null = null;
  tail: Ticket | null = null;
  size = 0;

  push(t: Ticket): void {
    t.prev = this.tail;
    t.next = null;
    if (this.tail) this.tail.next = t;
    else this.head = t;
    this.tail = t;
    this.size++;
  }

  remove(t: Ticket): void {
    if (t.prev) t.prev.next = t.next;
    else this.head = t.next;
    if (t.next) t.next.prev = t.prev;
    else this.tail = t.prev;
    t.prev = t.next = null;
    this.size--;
  }
}

/**
 * At most `capacity` handlers run at once; up to `maxQueue` more wait in FIFO order,
 * and a call past that is refused. Occupancy is (running + queued) / capacity, or the
 * highest sampled meter if higher, and is not capped (a queue is load); `load()` is the
 * same capped at 1, as reports and people read it. The counts live in shared memory,
 * where the reporter thread reads them.
 *
 * A freed slot goes at once to the first waiting call (so no newcomer overtakes it),
 * but that call starts on a later turn of the event loop: the call that freed the slot
 * has its answer written first, and synchronous handlers do not drain the whole queue
 * in one stack.
 */
export class Admission {
  private readonly queue = new TicketList();
  /** Calls given a slot, to start on the next turn; counted as running. */
  private readonly ready = new TicketList();
  private drainScheduled = false;
  private readonly drainNow = () => this.drain();
  private readonly onChange: () => void;
  private above = false;
  readonly counters: LoadCounters;
  /** Calls by which occupancy must move from the last report for another to go out at once. */
  private readonly step: number;

  constructor(
    readonly capacity: number,
    public maxQueue: number,
    public threshold: number,
    /** A report is due: load crossed the threshold, or moved a step since the last report. */
    onChange: () => void,
    counters: LoadCounters = new LoadCounters(),
  ) {
    this.onChange = onChange;
    this.counters = counters;
    this.step = Math.max(1, Math.ceil(capacity / 8));
  }

  /** Handlers running now, and calls given a slot that start on the next turn. */
  get running(): number {
    return this.counters.running;
  }
  set running(v: number) {
    this.counters.running = v;
  }
  /** Calls waiting for a slot. */
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

  /** Load at this moment, 0..1 (as reports and people read it: a full node is 1). */
  load(): number {
    const m = this.occupancy();
    return m > 1 ? 1 : m;
  }

  /** Calls running and queued over capacity, not capped (a meter's load if higher): what decisions compare. */
  occupancy(): number {
    const l = (this.running + this.queued) / this.capacity;
    return l > this.meterLoad ? l : this.meterLoad;
  }

  /** True when every slot is busy and the queue is full. */
  full(): boolean {
    return this.running >= this.capacity && this.queued >= this.maxQueue;
  }

  /**
   * Starts `t` now if a slot is free ('started'), else queues it ('queued'), unless
   * `maxQueue` calls wait already ('full': nothing was done, the caller answers).
   */
  admit(t: Ticket): Admitted {
    if (this.running < this.capacity) {
      this.running++;
      this.check();
      t.start();
      return 'started';
    }
    if (this.queued >= this.maxQueue) return 'full';
    this.queue.push(t);
    t.where = QUEUED;
    this.queued++;
    this.check();
    return 'queued';
  }

  /** A running call ended: its slot goes to the first waiting call, which starts on the next turn. */
  release(): void {
    const t = this.queue.head;
    if (t === null) {
      this.running--;
      this.check();
      return;
    }
    this.queue.remove(t);
    this.queued--;
    this.ready.push(t);
    t.where = READY;
    this.check();
    if (!this.drainScheduled) {
      this.drainScheduled = true;
      setImmediate(this.drainNow);
    }
  }

  /**
   * Drops a call that has not started (cancelled, or past its deadline): out of the
   * queue at once, so nothing keeps it (or its request) alive; a slot it was given
   * goes to the next. Returns false when the call had started or was never queued.
   */
  cancel(t: Ticket): boolean {
    if (t.where === QUEUED) {
      this.queue.remove(t);
      t.where = OUT;
      this.queued--;
      this.check();
      return true;
    }
    if (t.where === READY) {
      this.ready.remove(t);
      t.where = OUT;
      this.release();
      return true;
    }
    return false;
  }

  // Starts the calls that were ready when the turn began; those they free wait for the next.
  private drain(): void {
    this.drainScheduled = false;
    for (let n = this.ready.size; n > 0 && this.ready.head !== null; n--) {
      const t = this.ready.head;
      this.ready.remove(t);
      t.where = OUT;
      t.start();
    }
    if (this.ready.head !== null && !this.drainScheduled) {
      this.drainScheduled = true;
      setImmediate(this.drainNow);
    }
  }

  // A report goes out at once when load crosses the threshold, and when it moved by a step
  // (an eighth of capacity, at least one call) from what the last report said: near
  // saturation a peer's view a period old is too old to place calls by (bench: saturation).
  // Each shared count is read once (the threshold is at most 1, so capping the load at 1
  // changes no comparison with it).
  private check(): void {
    const occupied = this.running + this.queued;
    const l = occupied / this.capacity;
    const meter = this.meterLoad;
    const above = (l > meter ? l : meter) >= this.threshold;
    const moved = occupied - this.counters.reportedOccupancy;
    if (above !== this.above || moved >= this.step || -moved >= this.step) {
      this.above = above;
      this.onChange();
    }
  }
}
