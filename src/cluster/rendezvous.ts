import { createHash } from 'node:crypto';

/**
 * Rendezvous (highest-random-weight) hashing: the candidate with the highest
 * hash of (key, candidate) wins. Every node computes the same winner from the same
 * candidate set, with no coordination, and a key moves only when its winner leaves.
 */
export function rendezvousWinner(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = '';
  for (const c of candidates) {
    const score = createHash('sha256').update(key).update('\0').update(c).digest('hex');
    if (best === undefined || score > bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}
