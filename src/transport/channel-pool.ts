import * as grpc from '@grpc/grpc-js';
import { connectivityState } from '@grpc/grpc-js';

/** Default number of channels a pool keeps open. */
export const DEFAULT_MAX_CHANNELS = 64;
/** Default time after which a channel no call used is closed, ms. */
export const DEFAULT_CHANNEL_IDLE_MS = 300_000;

/** Bounds of a `ChannelPool`. */
export interface ChannelPoolOptions {
  /**
   * Channels kept open at most. Past it, opening one closes the least recently used channel
   * that no call holds; when every channel is held, the pool goes over the bound until one is
   * released (a call never fails because of it). Default 64.
   */
  maxChannels?: number;
  /** A channel that no call held or looked up for this long is closed, ms (0: never). Default 300 000 (5 min). */
  idleMs?: number;
}

/**
 * One pooled channel, and what the stub needs to know of it: how many calls hold it, when it
 * was last used, and whether it has been READY (connected) since a given moment.
 */
export class PooledChannel {
  /** Calls that hold this channel (`ChannelPool.acquire`); a held channel is never closed by the bounds. */
  held = 0;
  /** `performance.now()` of the last acquire, release or lookup. */
  lastUsed = performance.now();
  /** Times the channel became READY; with `ready`, tells whether a call may have left. */
  private readyCount = 0;
  private ready = false;

  constructor(
    readonly endpoint: string,
    readonly channel: grpc.Channel,
  ) {
    this.watch();
  }

  /** A mark to pass to `connectedSince()` later. */
  readyMark(): number {
    return this.ready ? -1 : this.readyCount;
  }

  /**
   * True when the channel was READY at `mark` or became READY after it. grpc-js sends a call
   * only on a READY connection, so when this is false a call started at `mark` never left.
   */
  connectedSince(mark: number): boolean {
    return mark < 0 || this.readyCount !== mark;
  }

  // grpc-js calls watchers synchronously on every change (before queued calls are sent on a
  // new connection), and an infinite deadline sets no timer: re-arming on each change misses none.
  private watch(): void {
    const state = this.channel.getConnectivityState(false);
    if (state === connectivityState.READY && !this.ready) this.readyCount++;
    this.ready = state === connectivityState.READY;
    if (state === connectivityState.SHUTDOWN) return;
    this.channel.watchConnectivityState(state, Infinity, () => this.watch());
  }
}

/**
 * One channel per endpoint, shared by every client of a stub (a redirect never opens a new
 * connection to a known node) and by a broker's forwarder. Bounded: at most `maxChannels`
 * open, and a channel unused for `idleMs` is closed. Closing a channel never ends a call
 * already running on it (grpc-js lets those finish); the next call opens a new one.
 */
export class ChannelPool {
  private readonly entries = new Map<string, PooledChannel>();
  private readonly clients = new Map<string, grpc.Client>();
  private readonly maxChannels: number;
  private readonly idleMs: number;
  private sweeper?: NodeJS.Timeout;
  private closed = false;

  constructor(
    readonly credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
    readonly channelOptions: grpc.ChannelOptions = {},
    options: ChannelPoolOptions = {},
  ) {
    this.maxChannels = positive('maxChannels', options.maxChannels ?? DEFAULT_MAX_CHANNELS);
    this.idleMs = options.idleMs ?? DEFAULT_CHANNEL_IDLE_MS;
    if (!(this.idleMs >= 0)) throw new Error(`channel pool: 'idleMs' must be >= 0, got ${options.idleMs}`);
  }

  /** The channel to `endpoint`, opened on first use. For a call, prefer `acquire()`. */
  channel(endpoint: string): grpc.Channel {
    const entry = this.entry(endpoint);
    entry.lastUsed = performance.now();
    return entry.channel;
  }

  /** A generic client on the channel to `endpoint`, for calls made by path. */
  client(endpoint: string): grpc.Client {
    const channel = this.channel(endpoint);
    let c = this.clients.get(endpoint);
    if (!c) {
      c = new grpc.Client(endpoint, this.credentials, { channelOverride: channel });
      this.clients.set(endpoint, c);
    }
    return c;
  }

  /** The channel to `endpoint`, held for one call: it stays open until `release()`. */
  acquire(endpoint: string): PooledChannel {
    const entry = this.entry(endpoint);
    entry.held++;
    entry.lastUsed = performance.now();
    return entry;
  }

  /** Ends a hold taken with `acquire()`. */
  release(entry: PooledChannel): void {
    entry.held--;
    entry.lastUsed = performance.now();
    if (this.entries.size > this.maxChannels) this.shrink(this.maxChannels);
  }

  /** Endpoints with an open channel. */
  endpoints(): string[] {
    return [...this.entries.keys()];
  }

  /** Closes every channel; the pool opens none after this. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const entry of this.entries.values()) entry.channel.close();
    this.entries.clear();
    this.clients.clear();
  }

  private entry(endpoint: string): PooledChannel {
    const found = this.entries.get(endpoint);
    if (found) return found;
    if (this.closed) throw new Error('channel pool is closed');
    this.shrink(this.maxChannels - 1);
    const entry = new PooledChannel(endpoint, new grpc.Channel(endpoint, this.credentials, this.channelOptions));
    this.entries.set(endpoint, entry);
    this.startSweeper();
    return entry;
  }

  /** Closes least recently used channels that no call holds until at most `size` are open. */
  private shrink(size: number): void {
    while (this.entries.size > size) {
      let oldest: PooledChannel | undefined;
      for (const e of this.entries.values()) if (e.held === 0 && (!oldest || e.lastUsed < oldest.lastUsed)) oldest = e;
      // Every channel is held by a call: stay over the bound until one is released.
      if (!oldest) return;
      this.drop(oldest);
    }
  }

  private sweep(): void {
    const now = performance.now();
    for (const e of this.entries.values()) if (e.held === 0 && now - e.lastUsed >= this.idleMs) this.drop(e);
    if (this.entries.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private drop(entry: PooledChannel): void {
    this.entries.delete(entry.endpoint);
    this.clients.delete(entry.endpoint);
    entry.channel.close();
  }

  // Only while channels are open, unref'd: an idle pool keeps no timer and never holds the process.
  private startSweeper(): void {
    if (this.sweeper || this.idleMs === 0) return;
    this.sweeper = setInterval(() => this.sweep(), Math.min(Math.max(this.idleMs / 2, 10), 30_000));
    this.sweeper.unref();
  }
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`channel pool: '${name}' must be an integer >= 1, got ${value}`);
  return value;
}
