import fc from 'fast-check';

/** Protobuf base-128 varint encoding of `n`, for tests that hand-craft report bytes. */
export function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** Copies of one of `bases` with a few bytes flipped, maybe cut short, maybe with bytes appended. */
export function mutationsOf(...bases: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc
    .record({
      base: fc.constantFrom(...bases),
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 6 }),
      cut: fc.option(fc.nat(), { nil: undefined }),
      tail: fc.uint8Array({ maxLength: 32 }),
    })
    .map(({ base, flips, cut, tail }) => {
      const b = new Uint8Array(base);
      for (const [i, x] of flips) b[i % b.length] ^= x;
      const kept = cut === undefined ? b : b.subarray(0, cut % (b.length + 1));
      const out = new Uint8Array(kept.length + tail.length);
      out.set(kept, 0);
      out.set(tail, kept.length);
      return out;
    });
}
