import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClusterKey } from '../../../src/cluster/cluster-key';
import { encodeReport, type LoadReport } from '../../../src/cluster/report-codec';
import { budgetWindowMs, MAX_KNOWN_SUBJECTS, NEWCOMER_BUDGET_MS_PER_SEC, readClock, ReportFilter, SUBJECT_BUDGET_MS_PER_SEC, tickMs } from '../../../src/cluster/report-filter';
import { sealReport } from '../../../src/cluster/report-signing';
import { isWireFormat } from '../../../src/cluster/wire-scan';
import { mutationsOf } from '../../helpers/bytes';
import { fakeReport } from '../../helpers/reports';

const TICK = 10;
const INCARNATION = Date.now() - 1_000;

/** A report of n2 in cluster 'c' (one incarnation throughout). */
function report(over: Partial<LoadReport> = {}): LoadReport {
  return fakeReport({ cluster: 'c', nodeId: 'n2', endpoint: '127.0.0.2:7002', incarnation: INCARNATION, ...over });
}

/**
 * A filter on a fake clock that moves `costMs` on every reading, so reading one message
 * costs `costMs` (the clock is the only fake: reading, verifying and checking are real).
 */
function setup(opts: { key?: ClusterKey; known?: string[]; costMs?: number } = {}) {
  let now = 0;
  const clock = () => (now += opts.costMs ?? 0.001);
  const filter = new ReportFilter({ cluster: 'c', selfId: 'n1', maxClockSkewMs: 30_000, maxAgeMs: 60_000, windowMs: TICK, clock, ...opts });
  // A tick later: the budgets' window has passed.
  const take = () => {
    now += TICK;
    return filter.take(Date.now(), TICK);
  };
  return { filter, take, offer: (token: string, data: Uint8Array) => filter.offer(token, data, Date.now()) };
}

describe('ReportFilter', () => {
  it('hands over the latest report of each peer once per tick, and drops older ones as replays', () => {
    const { offer, take } = setup();
    for (const seq of [3, 5, 4]) offer('n2', encodeReport(report({ seq })));
    offer('n3', encodeReport(report({ nodeId: 'n3', seq: 1 })));
    const batch = take()!;
    expect(batch.reports.map((r) => [r.nodeId, r.seq])).toEqual([
      ['n2', 5],
      ['n3', 1],
    ]);
    expect(batch.drops.replay?.count).toBe(1);
    expect(take()).toBeUndefined();
    // A replay in a later tick, and an older incarnation.
    offer('n2', encodeReport(report({ seq: 5 })));
    offer('n2', encodeReport(report({ seq: 99, incarnation: INCARNATION - 1 })));
    expect(Object.fromEntries(Object.entries(take()!.drops).map(([k, t]) => [k, t.count]))).toEqual({ replay: 1, 'old-incarnation': 1 });
  });

  it("says when each report it hands over was read (the newest one's time, a peer's older reports replaced)", () => {
    let t = 100;
    const filter = new ReportFilter({ cluster: 'c', selfId: 'n1', maxClockSkewMs: 30_000, maxAgeMs: 60_000, windowMs: TICK, stamp: () => (t += 3) });
    filter.offer('n2', encodeReport(report({ seq: 1 })), Date.now());
    filter.offer('n3', encodeReport(report({ nodeId: 'n3', seq: 1 })), Date.now());
    filter.offer('n2', encodeReport(report({ seq: 2 })), Date.now());
    const batch = filter.take(Date.now(), TICK)!;
    expect(batch.reports.map((r) => [r.nodeId, r.seq])).toEqual([
      ['n2', 2],
      ['n3', 1],
    ]);
    expect(batch.readAt).toEqual([109, 106]);
  });

  it('stamps reads on a clock the main thread reads alike', () => {
    const { filter } = setup();
    const before = readClock();
    filter.offer('n2', encodeReport(report({ seq: 1 })), Date.now());
    const [at] = filter.take(Date.now(), TICK)!.readAt!;
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(readClock());
  });

  it('drops, counts by reason and names the last subject of what does not read as a report of its subject', () => {
    const { offer, take } = setup();
    offer('n2', new Uint8Array([0xff, 0xff]));
    offer('n2', encodeReport(report({ cluster: 'other' })));
    offer('n9', encodeReport(report()));
    offer('n1', encodeReport(report({ nodeId: 'n1' })));
    offer('n2', encodeReport(report({ sentAtMs: Date.now() + 3_600_000 })));
    offer(`x${'y'.repeat(100)}`, new Uint8Array(0));
    const batch = take()!;
    expect(batch.reports).toEqual([]);
    expect(Object.fromEntries(Object.entries(batch.drops).map(([k, t]) => [k, t.count]))).toEqual({
      malformed: 2,
      'wrong-cluster': 1,
      'wrong-subject': 1,
      'own-id': 1,
      future: 1,
    });
    expect(batch.drops.malformed?.node).toBe(`x${'y'.repeat(63)}...`);
  });

  it('with a key, reads only reports signed with it', () => {
    const key = ClusterKey.fromSecrets(['0123456789abcdef0123456789abcdef']);
    const other = ClusterKey.fromSecrets(['fedcba9876543210fedcba9876543210']);
    const { offer, take } = setup({ key });
    offer('n2', encodeReport(report({ seq: 9 })));
    offer('n2', sealReport(encodeReport(report({ seq: 8 })), other));
    offer('n2', sealReport(encodeReport(report({ seq: 2 })), key));
    const batch = take()!;
    expect(batch.reports.map((r) => r.seq)).toEqual([2]);
    expect(batch.drops.unsigned?.count).toBe(1);
    expect(batch.drops['bad-signature']?.count).toBe(1);
  });

  it("caps the time one known peer's subject may cost per tick, and says the peer was flooded", () => {
    const costMs = 0.01;
    const { offer, take } = setup({ known: ['n2'], costMs });
    const perTick = Math.ceil((SUBJECT_BUDGET_MS_PER_SEC * TICK) / 1000 / costMs);
    for (let i = 0; i < perTick + 100; i++) offer('n2', new Uint8Array([0xff]));
    offer('n3', encodeReport(report({ nodeId: 'n3' })));
    const batch = take()!;
    expect(batch.drops.malformed?.count).toBe(perTick);
    expect(batch.drops['rate-limited']?.count).toBe(100);
    expect(batch.flooded).toEqual(['n2']);
    // Another subject was not starved.
    expect(batch.reports.map((r) => r.nodeId)).toEqual(['n3']);
    // The next tick starts afresh.
    offer('n2', encodeReport(report({ seq: 2 })));
    expect(take()!.reports.map((r) => r.seq)).toEqual([2]);
  });

  it('shares one budget between all subjects of nodes not yet known, so a flood of new ids cannot starve known peers', () => {
    const costMs = 0.01;
    const { offer, take } = setup({ known: ['n2'], costMs });
    const perTick = Math.ceil((NEWCOMER_BUDGET_MS_PER_SEC * TICK) / 1000 / costMs);
    for (let i = 0; i < perTick + 50; i++) offer(`ghost${i}`, new Uint8Array([0xff]));
    offer('n2', encodeReport(report()));
    const batch = take()!;
    expect(batch.drops['rate-limited']?.count).toBe(50);
    expect(batch.flooded).toEqual([]);
    expect(batch.reports.map((r) => r.nodeId)).toEqual(['n2']);
  });

  it('keeps one budget across hand-overs that come more often than its window: a burst gets no more for it', () => {
    const costMs = 0.01;
    let now = 0;
    const filter = new ReportFilter({ cluster: 'c', selfId: 'n1', maxClockSkewMs: 30_000, maxAgeMs: 60_000, windowMs: TICK, clock: () => (now += costMs) });
    const perWindow = Math.round((NEWCOMER_BUDGET_MS_PER_SEC * TICK) / 1000 / costMs);
    for (let i = 0; i < perWindow / 2; i++) filter.offer(`ghost${i}`, new Uint8Array([0xff]), Date.now());
    now += TICK / 4;
    expect(filter.take(Date.now(), TICK)!.drops['rate-limited']).toBeUndefined();
    // A quarter window later, a hand-over: the rest of the window's budget is what is left.
    for (let i = 0; i < perWindow; i++) filter.offer(`spook${i}`, new Uint8Array([0xff]), Date.now());
    const dropped = filter.take(Date.now(), TICK)!.drops['rate-limited']?.count ?? 0;
    expect(dropped).toBeGreaterThanOrEqual(perWindow / 2 - 2);
    // Once the window has passed, the budget is whole again.
    now += TICK;
    filter.take(Date.now(), TICK);
    for (let i = 0; i < perWindow / 2; i++) filter.offer(`wraith${i}`, new Uint8Array([0xff]), Date.now());
    expect(filter.take(Date.now(), TICK)!.drops['rate-limited']).toBeUndefined();
  });

  it(`remembers at most ${MAX_KNOWN_SUBJECTS} ids as known`, () => {
    const { filter, offer, take } = setup();
    for (let i = 0; i < MAX_KNOWN_SUBJECTS + 10; i++) {
      offer(`p${i}`, encodeReport(report({ nodeId: `p${i}` })));
      if (i % 20 === 0) take();
    }
    expect((filter as unknown as { known: Map<string, number> }).known.size).toBe(MAX_KNOWN_SUBJECTS);
  });

  it('never throws, whatever arrives (property)', () => {
    const { offer, take } = setup({ known: ['n2'] });
    const real = encodeReport(report());
    fc.assert(
      fc.property(fc.constantFrom('n2', 'n3', 'n1', ''), fc.oneof(fc.uint8Array({ maxLength: 300 }), mutationsOf(real)), (token, data) => {
        offer(token, data);
        take();
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('isWireFormat', () => {
  it('accepts every encoded report and envelope, and refuses cut or scrambled framing', () => {
    const bytes = encodeReport(report());
    expect(isWireFormat(bytes)).toBe(true);
    expect(isWireFormat(sealReport(bytes, ClusterKey.fromSecrets(['0123456789abcdef0123456789abcdef'])))).toBe(true);
    expect(isWireFormat(bytes.subarray(0, 5))).toBe(false);
    expect(isWireFormat(new Uint8Array([0x0b, 0x00]))).toBe(false); // a group
    expect(isWireFormat(new Uint8Array([0x0a, 0x05, 0x61]))).toBe(false); // length past the end
  });

  it('accepts every report, whatever its fields hold (property)', () => {
    const fields = fc.record({
      nodeId: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
      seq: fc.nat(),
      incarnation: fc.nat(),
      load: fc.double({ min: 0, max: 1, noNaN: true }),
      services: fc.array(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.]{0,40}$/), { maxLength: 20 }),
      endpoints: fc.array(fc.constantFrom('127.0.0.1:1', '[::1]:65535', 'a.example:80'), { maxLength: 8 }),
      takeover: fc.boolean(),
    });
    fc.assert(
      fc.property(fields, (f) => {
        expect(isWireFormat(encodeReport(report(f)))).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('tickMs', () => {
  it('is a hundredth of the period, between 5 and 50 ms', () => {
    expect([10, 200, 500, 2_000, 60_000].map(tickMs)).toEqual([5, 5, 5, 20, 50]);
  });
});

describe('budgetWindowMs', () => {
  it('is a twentieth of the period, between 10 and 50 ms', () => {
    expect([10, 200, 500, 2_000, 60_000].map(budgetWindowMs)).toEqual([10, 10, 25, 50, 50]);
  });
});
