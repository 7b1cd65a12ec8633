import { Metadata, status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { AdvisedRouting } from '../../../src/client/routing';
import { encodeAdvice, MD_ADVICE } from '../../../src/wire';

const N1 = '127.0.0.1:7001';
const N2 = '127.0.0.2:7002';

/** A redirect's status, carrying an advice of 1/3 of the calls to n1 and 2/3 to n2. */
function redirectWithAdvice() {
  const metadata = new Metadata();
  metadata.set(MD_ADVICE, encodeAdvice({ ttlMs: 10_000, shares: [{ endpoint: N1, share: 1 / 3 }, { endpoint: N2, share: 2 / 3 }] }));
  return { code: status.RESOURCE_EXHAUSTED, details: 'redirected', metadata };
}

describe('routing by advice', () => {
  it('takes an advice that names a node not yet known once the member list knows it, not without it', async () => {
    const members = new Set([N1]);
    let listArrives!: () => void;
    const learned = new Promise<void>((resolve) => (listArrives = resolve));
    const routing = new AdvisedRouting(N1, (e) => members.has(e), () => learned);
    routing.onAnswer(N1, redirectWithAdvice(), true);
    // Not taken yet: taken now, it would send every call to n1, the only node known.
    expect(routing.shares()).toEqual({});
    members.add(N2);
    listArrives();
    await learned;
    await Promise.resolve();
    const shares = routing.shares();
    expect(Object.keys(shares).sort()).toEqual([N1, N2]);
    expect(shares[N2]).toBeCloseTo(0.67, 2);
  });

  it('takes an advice naming known nodes at once', () => {
    const routing = new AdvisedRouting(N1, () => true, () => new Promise(() => {}));
    routing.onAnswer(N1, redirectWithAdvice(), true);
    expect(routing.shares()[N2]).toBeCloseTo(0.67, 2);
  });
});
