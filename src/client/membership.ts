import type * as grpc from '@grpc/grpc-js';
import { brokerProto, type ChannelPool } from '../transport';
import type { MembersResponse__Output } from '../generated/peerbroker/v1/MembersResponse';

/** Default interval between two refreshes of the member list, ms. */
export const DEFAULT_MEMBERS_REFRESH_MS = 10_000;
/** Default time one endpoint gets to answer `Members`, ms. */
export const DEFAULT_MEMBERS_ASK_MS = 1_000;
/** Default number of endpoints learned from `Members` that are kept. */
export const DEFAULT_MAX_LEARNED_MEMBERS = 256;
/** Endpoints asked at once: the first answer wins. */
const PARALLEL_ASKS = 3;
/** Rounds of asks in one refresh: with `askMs`, bounds how long a refresh can take (3 s by default). */
const MAX_ROUNDS = 3;

/** Asks `endpoint` for the member list; rejects on failure or after `timeoutMs`. */
export type MembersAsk = (endpoint: string, timeoutMs: number) => Promise<MembersResponse__Output>;

/** Options of a `Membership`. */
export interface MembershipOptions {
  /** How often the member list is refreshed, ms (0: only when needed). Default 10 000. */
  refreshMs?: number;
  /** Time one endpoint gets to answer, ms. Default 1 000. */
  askMs?: number;
  /** Learned endpoints kept at most (the first ones of the answer). Default 256. */
  maxLearned?: number;
}

/** A node named by a redirect or an advice and not yet known: the member list is asked again at most this often (ms). */
export const MEMBERS_RECHECK_MS = 200;

/**
 * The endpoints a stub may follow a redirect to: the configured ones, plus those learned
 * from `peerbroker.v1.Broker/Members` on a configured or known endpoint.
 */
export class Membership {
  private readonly configured: ReadonlySet<string>;
  private learned = new Set<string>();
  private pending?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private lastRefresh = -Infinity;
  private readonly refreshMs: number;
  private readonly askMs: number;
  private readonly maxLearned: number;

  constructor(
    endpoints: readonly string[],
    private readonly ask: MembersAsk,
    options: MembershipOptions = {},
  ) {
    this.configured = new Set(endpoints);
    this.refreshMs = options.refreshMs ?? DEFAULT_MEMBERS_REFRESH_MS;
    this.askMs = options.askMs ?? DEFAULT_MEMBERS_ASK_MS;
    this.maxLearned = options.maxLearned ?? DEFAULT_MAX_LEARNED_MEMBERS;
  }

  /** Refreshes now, then every `refreshMs` (jittered ±10 %, timer unref'd). */
  start(): void {
    void this.refresh().finally(() => this.schedule());
  }

  /** Stops the periodic refresh. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
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
   * Asks known nodes for the member list; concurrent callers share one request, which never
   * rejects. `from` (the node that just answered) is asked first, then the configured ones,
   * then the learned ones, three at once, each for at most `askMs`, for at most three rounds;
   * the first answer wins. A call waiting for it bounds its own wait by its deadline.
   */
  refresh(from?: string): Promise<void> {
    this.pending ??= this.doRefresh(from).finally(() => {
      this.pending = undefined;
      // Stamped when it ends, failed or not: while no member answers, redirects to an unknown
      // node must not start a new round of asks each.
      this.lastRefresh = performance.now();
    });
    return this.pending;
  }

  /** Refreshes unless the list is younger than `minAgeMs`; joins a refresh under way. */
  async refreshIfOlder(minAgeMs: number, from?: string): Promise<void> {
    if (this.pending || performance.now() - this.lastRefresh >= minAgeMs) await this.refresh(from);
  }

  private schedule(): void {
    if (this.stopped || this.refreshMs <= 0) return;
    const delay = this.refreshMs * (0.9 + Math.random() * 0.2);
    this.timer = setTimeout(() => void this.refresh().finally(() => this.schedule()), delay);
    this.timer.unref();
  }

  private async doRefresh(from?: string): Promise<void> {
    const order = [...new Set([...(from && this.has(from) ? [from] : []), ...this.configured, ...this.learned])];
    for (let i = 0; i < order.length && i < MAX_ROUNDS * PARALLEL_ASKS && !this.stopped; i += PARALLEL_ASKS) {
      const asks = order.slice(i, i + PARALLEL_ASKS).map((e) => this.ask(e, this.askMs));
      const answer = await Promise.any(asks).catch(() => undefined);
      if (answer) return this.learn(answer);
    }
  }

  private learn(answer: MembersResponse__Output): void {
    const next = new Set<string>();
    for (const m of answer.members) {
      if (m.status === 'OFFLINE' || m.status === 'LEAVING') continue;
      for (const e of [m.endpoint, ...m.endpoints]) if (e && next.size < this.maxLearned) next.add(e);
    }
    this.learned = next;
  }
}

/** Asks over gRPC (`peerbroker.v1.Broker/Members`) on the pool's channel to the endpoint. */
export function grpcMembersAsk(pool: ChannelPool): MembersAsk {
  const def = brokerProto().peerbroker.v1.Broker.service.Members;
  return (endpoint, timeoutMs) =>
    new Promise((resolve, reject) => {
      const held = pool.acquire(endpoint);
      pool
        .client(endpoint)
        .makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, {}, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res?: MembersResponse__Output) => {
          pool.release(held);
          if (err || !res) reject(err ?? new Error('empty Members answer'));
          else resolve(res);
        });
    });
}
