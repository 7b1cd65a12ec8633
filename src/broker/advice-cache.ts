import type { PeerView } from '../cluster';
import { adviseSpread, type PeerChoice, type PolicyConfig, type SelfState } from '../policy';
import { encodeAdvice } from '../wire';

/** Advice is computed at most this often per service, ms: redirects come in bursts. */
const ADVICE_REFRESH_MS = 20;
/** An advice holds for this many reporting periods. */
const ADVICE_TTL_PERIODS = 20;

/**
 * The `peerbroker-advice` value this node gives for calls of each service: how a client
 * should spread its next calls of that service (policy/advice.ts), encoded for the wire.
 * Kept per service (one entry per service added, so bounded) and recomputed when older
 * than 20 ms.
 */
export class AdviceCache {
  private readonly byService = new Map<string, { at: number; value: string }>();

  constructor(
    private readonly self: SelfState,
    private readonly endpoint: () => string,
    private readonly peers: PeerView,
    private readonly config: PolicyConfig,
    private readonly choice: () => PeerChoice,
    private readonly periodMs: () => number,
  ) {}

  /** The advice for calls of `service` at local time `now` (ms, monotonic), '' when there is none. */
  get(service: string, now: number): string {
    const hit = this.byService.get(service);
    if (hit && now - hit.at < ADVICE_REFRESH_MS) return hit.value;
    const shares = adviseSpread(this.self, this.endpoint(), this.peers.peers, service, now, this.config, this.choice());
    const value = shares.length === 0 ? '' : encodeAdvice({ ttlMs: ADVICE_TTL_PERIODS * this.periodMs(), shares });
    if (hit) {
      hit.at = now;
      hit.value = value;
    } else this.byService.set(service, { at: now, value });
    return value;
  }
}
