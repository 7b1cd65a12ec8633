import type { PeerView } from '../cluster';

/** Periods a restarted node waits for a peer to advertise its taken address before it gives up. */
export const RECLAIM_PATIENCE_PERIODS = 2;
/** ... and at least this long, ms, so a very short period does not give up before peers could report. */
export const MIN_RECLAIM_PATIENCE_MS = 1_000;
const RETRY_MS = 100;

/** What reclaiming a taken listen address needs. */
export interface ReclaimContext {
  /** The address as configured (for messages). */
  listen: string;
  /** The endpoint peers know this node by, which an adopter advertises. */
  endpoint: string;
  peers: PeerView;
  periodMs: number;
  /** Longest wait while a peer advertises the address. */
  timeoutMs: number;
  /** Tries to bind once; rejects while the address is in use. */
  bind(): Promise<unknown>;
}

/**
 * Binds an address that was in use at start: an adopter releases it once this node's
 * report (a new incarnation) reaches it. Waiting makes sense only while a peer
 * advertises the address as adopted: with none for two periods (every live peer has reported by
 * then), another process holds it and this rejects at once instead of after `timeoutMs`.
 */
export async function reclaimAddress(c: ReclaimContext): Promise<void> {
  const started = Date.now();
  const patienceMs = Math.max(RECLAIM_PATIENCE_PERIODS * c.periodMs, MIN_RECLAIM_PATIENCE_MS);
  let advertisedAt = started;
  for (;;) {
    try {
      await c.bind();
      return;
    } catch (err) {
      const now = Date.now();
      // Adopted: served by a live peer as well as its own address.
      if (c.peers.peers.some((p) => p.status !== 'OFFLINE' && p.endpoint !== c.endpoint && p.endpoints.includes(c.endpoint))) advertisedAt = now;
      if (now - advertisedAt >= patienceMs) {
        throw new Error(`cannot listen on '${c.listen}': the address is in use and no peer advertises it (another process holds it)`);
      }
      if (now - started >= c.timeoutMs) throw new Error(`could not bind '${c.listen}' within ${c.timeoutMs} ms: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }
}
