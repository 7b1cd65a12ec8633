import type * as grpc from '@grpc/grpc-js';
import { brokerProto, type ChannelPool } from '../transport';
import type { MembersResponse__Output } from '../generated/peerbroker/v1/MembersResponse';

/** Default interval between two refreshes of the member list. */
export const DEFAULT_MEMBERS_REFRESH_MS = 10_000;

/**
 * The endpoints a stub may follow a redirect to: the configured ones, plus those
 * learned from `peerbroker.v1.Broker/Members` on a configured or known endpoint.
 */
export class Membership {
  private readonly configured: ReadonlySet<string>;
  private learned = new Set<string>();
  private pending?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private lastRefresh = 0;

  constructor(
    private readonly pool: ChannelPool,
    endpoints: readonly string[],
    private readonly refreshMs = DEFAULT_MEMBERS_REFRESH_MS,
  ) {
    this.configured = new Set(endpoints);
  }

  /** Starts the periodic refresh (timer unref'd). */
  start(): void {
    void this.refresh();
    if (this.refreshMs > 0) {
      this.timer = setInterval(() => void this.refresh(), this.refreshMs);
      this.timer.unref();
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** True when `endpoint` is a known member. */
  has(endpoint: string): boolean {
    return this.configured.has(endpoint) || this.learned.has(endpoint);
  }

  /** Every known member endpoint. */
  all(): string[] {
    return [...new Set([...this.configured, ...this.learned])];
  }

  /**
   * Asks a known node for the member list; concurrent callers share one request.
   * `from` is tried first (the node that just answered), then the configured ones.
   */
  refresh(from?: string): Promise<void> {
    this.pending ??= this.doRefresh(from).finally(() => (this.pending = undefined));
    return this.pending;
  }

  /** Refreshes unless the list is younger than `minAgeMs`. */
  async refreshIfOlder(minAgeMs: number, from?: string): Promise<void> {
    if (performance.now() - this.lastRefresh >= minAgeMs) await this.refresh(from);
  }

  private async doRefresh(from?: string): Promise<void> {
    const order = [...new Set([...(from && this.has(from) ? [from] : []), ...this.configured, ...this.learned])];
    for (const endpoint of order) {
      const res = await this.ask(endpoint).catch(() => undefined);
      if (res) {
        const next = new Set<string>();
        for (const m of res.members) {
          if (m.status === 'OFFLINE' || m.status === 'LEAVING') continue;
          if (m.endpoint) next.add(m.endpoint);
          for (const e of m.endpoints) next.add(e);
        }
        this.learned = next;
        this.lastRefresh = performance.now();
        return;
      }
    }
  }

  private ask(endpoint: string): Promise<MembersResponse__Output> {
    const Broker = brokerProto().peerbroker.v1.Broker;
    const client = new Broker(endpoint, this.pool.credentials, { channelOverride: this.pool.channel(endpoint) });
    return new Promise((resolve, reject) =>
      client.Members({}, { deadline: Date.now() + 2_000 }, (err: grpc.ServiceError | null, res?: MembersResponse__Output) =>
        err || !res ? reject(err ?? new Error('empty answer')) : resolve(res),
      ),
    );
  }
}
