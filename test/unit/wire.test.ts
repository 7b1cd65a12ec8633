import { describe, expect, it } from 'vitest';
import { parseFollow, parseHops } from '../../src/wire';

const MAX_HOPS = 2;

describe('parseHops', () => {
  it('reads a call without peerbroker-hops as 0 hops', () => {
    expect(parseHops(undefined, MAX_HOPS)).toBe(0);
  });

  it.each([
    ['0', 0],
    ['1', 1],
    ['2', 2],
    ['7', 7],
    ['12', 12],
    ['999', 999],
  ])('reads %j as %i hops', (value, hops) => {
    expect(parseHops(value, MAX_HOPS)).toBe(hops);
  });

  // Documented: a malformed hop count is treated as at the hop limit, so the call
  // runs where it is and is never bounced (a bad value cannot start a loop).
  it.each(['-1', 'abc', '99999', '1000', 'forwarded', '1.5', ' 1', '1 ', '', '0x1', '1e1', '+1', '١'])(
    'treats the malformed value %j as the hop limit',
    (value) => {
      expect(parseHops(value, MAX_HOPS)).toBe(MAX_HOPS);
    },
  );

  it('treats a binary (Buffer) value as the hop limit', () => {
    expect(parseHops(Buffer.from('1'), MAX_HOPS)).toBe(MAX_HOPS);
  });

  it('uses the configured hop limit for malformed values', () => {
    expect(parseHops('nope', 5)).toBe(5);
    expect(parseHops('nope', 0)).toBe(0);
  });

  it('never returns fewer hops than the limit for a malformed value, whatever the limit', () => {
    for (let max = 0; max <= 16; max++) expect(parseHops('-3', max)).toBeGreaterThanOrEqual(max);
  });
});

describe('parseFollow', () => {
  it('reads 0, 1 and 2, and tells an absent value from a malformed one', () => {
    expect(['0', '1', '2'].map(parseFollow)).toEqual([0, 1, 2]);
    expect(parseFollow(undefined)).toBeUndefined();
    for (const bad of ['', '3', ' 1', 'yes', '01']) expect(parseFollow(bad)).toBeNull();
    expect(parseFollow(Buffer.from('1'))).toBeNull();
  });
});
