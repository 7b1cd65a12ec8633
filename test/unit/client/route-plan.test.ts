import { describe, expect, it } from 'vitest';
import { RoutePlan } from '../../../src/client/route-plan';

const A = '127.0.0.1:7001';
const B = '127.0.0.2:7002';
const C = '127.0.0.3:7003';
const all = () => true;
const advice = (ttlMs: number, shares: Record<string, number>) => ({ ttlMs, shares: Object.entries(shares).map(([endpoint, share]) => ({ endpoint, share })) });

function count(plan: RoutePlan, n: number, now: number): Record<string, number> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const e = plan.next(now);
    seen[e] = (seen[e] ?? 0) + 1;
  }
  return seen;
}

describe('RoutePlan', () => {
  it('sends every call to the origin until a node advises', () => {
    expect(count(new RoutePlan(A), 10, 0)).toEqual({ [A]: 10 });
  });

  it('takes a first advice whole and sends calls by share, evenly spaced', () => {
    const plan = new RoutePlan(A);
    plan.apply(advice(10_000, { [A]: 0.5, [B]: 0.25, [C]: 0.25 }), 0, all);
    expect(count(plan, 400, 1)).toEqual({ [A]: 200, [B]: 100, [C]: 100 });
    // Smooth: no endpoint gets two calls in a row when its share is a half or less.
    const seq = Array.from({ length: 8 }, () => plan.next(2));
    for (let i = 1; i < seq.length; i++) if (seq[i] !== A) expect(seq[i]).not.toBe(seq[i - 1]);
  });

  it('moves part of the way on a later advice, and not again within the settle time', () => {
    const plan = new RoutePlan(A, 100, 0.5);
    plan.apply(advice(10_000, { [A]: 1 }), 0, all);
    plan.apply(advice(10_000, { [B]: 1 }), 200, all);
    expect(plan.shares()).toEqual({ [A]: 0.5, [B]: 0.5 });
    plan.apply(advice(10_000, { [B]: 1 }), 250, all); // within 100 ms of the last one
    expect(plan.shares()).toEqual({ [A]: 0.5, [B]: 0.5 });
  });

  it('leaves out endpoints that are not members of the cluster', () => {
    const plan = new RoutePlan(A);
    plan.apply(advice(10_000, { [A]: 0.5, '10.9.9.9:1': 0.5 }), 0, (e) => e !== '10.9.9.9:1');
    expect(plan.shares()).toEqual({ [A]: 1 });
  });

  it('takes an advice that comes after the last one expired whole, not blended with the old shares', () => {
    const plan = new RoutePlan(A);
    plan.apply(advice(1_000, { [B]: 1 }), 0, all);
    plan.apply(advice(1_000, { [C]: 1 }), 1_500, all); // no call in between cleared it
    expect(plan.shares()).toEqual({ [C]: 1 });
  });

  it('goes back to the origin when the advice expires', () => {
    const plan = new RoutePlan(A);
    plan.apply(advice(1_000, { [B]: 1 }), 0, all);
    expect(plan.next(999)).toBe(B);
    expect(plan.next(1_000)).toBe(A);
    expect(plan.shares()).toEqual({});
  });

  it('asks for advice only while it holds a plan: a tenth of the ttl after each, one ask at a time', () => {
    const plan = new RoutePlan(A);
    expect(plan.wantsAdvice(0)).toBe(false); // no plan: a redirect will bring the first advice
    plan.apply(advice(10_000, { [A]: 1 }), 0, all);
    expect(plan.wantsAdvice(500)).toBe(false);
    expect(plan.wantsAdvice(1_000)).toBe(true);
    expect(plan.wantsAdvice(1_010)).toBe(false); // asked, no answer yet
    expect(plan.wantsAdvice(2_000)).toBe(true); // no answer brought one: ask again a second later
    plan.apply(advice(10_000, { [A]: 1 }), 2_010, all);
    expect(plan.wantsAdvice(2_500)).toBe(false);
    expect(plan.wantsAdvice(3_010)).toBe(true);
    expect(plan.wantsAdvice(12_010)).toBe(false); // expired: back to the origin, no plan
  });

  it('drops an endpoint that could not be reached', () => {
    const plan = new RoutePlan(A);
    plan.apply(advice(10_000, { [A]: 0.5, [B]: 0.5 }), 0, all);
    plan.drop(B);
    expect(count(plan, 4, 1)).toEqual({ [A]: 4 });
  });

  it('holds at most 16 endpoints', () => {
    const plan = new RoutePlan(A, 0, 0.5);
    for (let i = 0; i < 10; i++) {
      const shares: Record<string, number> = {};
      for (let j = 0; j < 8; j++) shares[`127.0.${i}.${j + 1}:7000`] = 1;
      plan.apply(advice(10_000, shares), i * 10, all);
    }
    expect(Object.keys(plan.shares()).length).toBeLessThanOrEqual(16);
  });
});
