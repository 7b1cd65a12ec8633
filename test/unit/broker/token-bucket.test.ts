import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../../src/broker/token-bucket';

describe('TokenBucket', () => {
  it('gives a burst at once, then the rate per second', () => {
    const b = new TokenBucket(3, 10, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(50)).toBe(false); // half a token so far
    expect(b.take(100)).toBe(true);
    expect(b.take(100)).toBe(false);
  });

  it('never holds more than the burst, however long it was idle', () => {
    const b = new TokenBucket(2, 10, 0);
    const taken = [b.take(60_000), b.take(60_000), b.take(60_000)];
    expect(taken).toEqual([true, true, false]);
  });
});
