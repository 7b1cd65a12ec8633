import { createHash } from 'node:crypto';

/**
 * Rendezvous (highest-random-weight) hashing: candidates ordered by the hash of
 * (key, candidate), highest first. Every node computes the same order from the same
 * candidate set, with no coordination, and a key moves only when its winner leaves.
 */
export function rendezvousRanking(key: string, candidates: readonly string[]): string[] {
  const score = (c: string) => createHash('sha256').update(key).update('\0').update(c).digest('hex');
  return [...new Set(candidates)]
    .map((c) => ({ c, s: score(c) }))
    .sort((a, b) => (a.s < b.s ? 1 : a.s > b.s ? -1 : 0))
    .map((x) => x.c);
}

/** The first of `rendezvousRanking`: the candidate that owns `key`. */
export function rendezvousWinner(key: string, candidates: readonly string[]): string | undefined {
  return rendezvousRanking(key, candidates)[0];
}
