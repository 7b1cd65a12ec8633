/**
 * The load counters the main thread keeps and the reporter thread reads, in shared
 * memory: the reporter never waits for the main event loop, so a node busy with CPU
 * work still reports (high load, high loop delay) instead of going silent.
 */
const I_RUNNING = 0;
const I_QUEUED = 1;
const I_STATUS = 2;
const I_REPORTED = 3;
const INT_SLOTS = 4;
const F_CALLS_RUN = 0;
const F_CALLS_REDIRECTED = 1;
const F_METER_LOAD = 2;
/** Wall time (ms) of the main loop's last heartbeat. */
const F_HEARTBEAT = 3;
const F_LOOP_DELAY = 4;
/** Sequence number of the last report published: a restarted reporter thread carries on from it. */
const F_SEQ = 5;
const FLOAT_SLOTS = 6;

/** Status codes as kept in shared memory. */
export const STATUS_CODES = ['ONLINE', 'DRAINING', 'UNHEALTHY', 'LEAVING'] as const;
export type NodeStatusName = (typeof STATUS_CODES)[number];

/** Typed views over one SharedArrayBuffer; construct from `buffer` on the other thread. */
export class LoadCounters {
  readonly buffer: SharedArrayBuffer;
  private readonly i: Int32Array;
  private readonly f: Float64Array;

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(INT_SLOTS * 4 + FLOAT_SLOTS * 8);
    this.f = new Float64Array(this.buffer, 0, FLOAT_SLOTS);
    this.i = new Int32Array(this.buffer, FLOAT_SLOTS * 8, INT_SLOTS);
  }

  get running(): number {
    return this.i[I_RUNNING];
  }
  set running(v: number) {
    this.i[I_RUNNING] = v;
  }
  get queued(): number {
    return this.i[I_QUEUED];
  }
  set queued(v: number) {
    this.i[I_QUEUED] = v;
  }
  /** Running + queued as the last report said (written by the reporter). */
  get reportedOccupancy(): number {
    return this.i[I_REPORTED];
  }
  set reportedOccupancy(v: number) {
    this.i[I_REPORTED] = v;
  }
  get status(): NodeStatusName {
    return STATUS_CODES[Atomics.load(this.i, I_STATUS)] ?? 'ONLINE';
  }
  set status(s: NodeStatusName) {
    Atomics.store(this.i, I_STATUS, STATUS_CODES.indexOf(s));
  }
  get callsRun(): number {
    return this.f[F_CALLS_RUN];
  }
  set callsRun(v: number) {
    this.f[F_CALLS_RUN] = v;
  }
  get callsRedirected(): number {
    return this.f[F_CALLS_REDIRECTED];
  }
  set callsRedirected(v: number) {
    this.f[F_CALLS_REDIRECTED] = v;
  }
  /** Highest load of the sampled meters, 0..1. */
  get meterLoad(): number {
    return this.f[F_METER_LOAD];
  }
  set meterLoad(v: number) {
    this.f[F_METER_LOAD] = v;
  }
  /** Wall time of the main loop's last heartbeat, ms. */
  get heartbeat(): number {
    return this.f[F_HEARTBEAT];
  }
  set heartbeat(v: number) {
    this.f[F_HEARTBEAT] = v;
  }
  /** Main loop delay (p99 of the last period) as the main thread measured it, ms. */
  get loopDelayMs(): number {
    return this.f[F_LOOP_DELAY];
  }
  set loopDelayMs(v: number) {
    this.f[F_LOOP_DELAY] = v;
  }
  /**
   * The next report's sequence number. Kept here, not in the reporter, so a reporter
   * that is replaced (restarted thread, or the main thread) never repeats one: peers
   * would drop its reports as replays. One reporter runs at a time, so no atomics.
   */
  nextSeq(): number {
    return ++this.f[F_SEQ];
  }
}
