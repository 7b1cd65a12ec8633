import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseAdvice, type Broker } from '../../src';
import {
  bankClient,
  callError,
  followMetadata,
  holdSlots,
  plainBankClient,
  startBroker,
  startBrokerGroup,
  unary,
  waitFor,
  waitForLoad,
  type SlotHold,
} from '../helpers/brokers';
import { natsForSuite } from '../helpers/suite';

// Capacity 4: every call in flight is 0.25 of load; threshold 0.5, margin 0.2.
const CLUSTER = 'decision';
const CAPACITY = 4;
const PERIOD_MS = 200;
const WORK_MS = 50;

describe('the decision on every call (three in-process brokers over NATS)', () => {
  const nats = natsForSuite();
  let n1: Broker;
  let n2: Broker;
  let n3: Broker;
  let holds: SlotHold[] = [];

  const hold = (b: Broker, n: number) => holds.push(holdSlots(b.endpoint, n));

  beforeAll(async () => {
    const common = {
      nats: [nats().url],
      cluster: CLUSTER,
      capacity: CAPACITY,
      threshold: 0.5,
      margin: 0.2,
      periodMs: PERIOD_MS,
      workMs: WORK_MS,
    };
    [n1, n2, n3] = await Promise.all(['n1', 'n2', 'n3'].map((nodeId) => startBroker({ nodeId, ...common })));
    for (const b of [n1, n2, n3]) {
      await waitFor(
        () => b.members().filter((m) => m.status === 'ONLINE').length === 3,
        15_000,
        50,
        `${b.nodeId} to see all three nodes ONLINE`,
      );
    }
  });

  afterEach(async () => {
    for (const h of holds) h.release();
    holds = [];
    // Back to idle everywhere, as every node sees it, before the next test.
    for (const b of [n1, n2, n3]) await waitForLoad(n1, b, 0);
  });

  afterAll(() => {
    for (const h of holds) h.release();
  });

  it('runs every call on the node it was sent to while that node is below threshold', async () => {
    const client = bankClient([n1.endpoint]);
    const before = { n1: n1.stats, n2: n2.stats, n3: n3.stats };
    const served: string[] = [];
    // Pairs of concurrent calls: at most load 0.25 when a call arrives, below 0.5.
    for (let round = 0; round < 10; round++) {
      const results = await Promise.all([0, 1].map((i) => unary(client, 'GetBalance', { accountId: `a${round}-${i}` })));
      served.push(...results.map((r) => r.servedBy!));
    }
    expect(served).toEqual(Array(20).fill('n1'));
    expect(client.peerbroker.stats.redirectsFollowed).toBe(0);
    expect(n1.stats.run - before.n1.run).toBe(20);
    expect(n1.stats.redirected - before.n1.redirected).toBe(0);
    expect(n2.stats.run - before.n2.run).toBe(0);
    expect(n3.stats.run - before.n3.run).toBe(0);
  });

  it('answers a following call over threshold with a redirect to the least-loaded online peer', async () => {
    // n1 at 0.75, n2 at 0.5, n3 idle: both peers are lower by the margin, n3 the least loaded.
    hold(n1, 3);
    hold(n2, 2);
    await waitForLoad(n1, n1, 0.75);
    await waitForLoad(n1, n2, 0.5);
    await waitForLoad(n1, n3, 0);

    const raw = plainBankClient(n1.endpoint);
    const redirectedBefore = n1.stats.redirected;
    const err = await callError(unary(raw, 'GetBalance', { accountId: 'x' }, { metadata: followMetadata() }));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.metadata.get('peerbroker-location')).toEqual([n3.endpoint]);
    expect(err.metadata.get('peerbroker-location-node')).toEqual(['n3']);
    expect(err.metadata.get('peerbroker-reason')).toEqual(['load']);
    expect(err.details).toMatch(/^peerbroker: redirected to n3 \(/);
    expect(err.details).toContain(n3.endpoint);
    expect(n1.stats.redirected).toBe(redirectedBefore + 1);
    // The redirect also says how to spread the next calls: more to the idle n3 than to the busy n1.
    const advice = parseAdvice(err.metadata.get('peerbroker-advice')[0]);
    const share = (b: Broker) => advice?.shares.find((x) => x.endpoint === b.endpoint)?.share ?? 0;
    expect(advice?.ttlMs).toBeGreaterThan(0);
    expect(share(n3)).toBeGreaterThan(share(n1));
  });

  it('tells a client that spreads by advice and asks how to spread its calls, in the headers of a call it runs', async () => {
    const raw = plainBankClient(n1.endpoint);
    const asked = followMetadata();
    asked.set('peerbroker-follow', '2');
    asked.set('peerbroker-advise-me', '1');
    const r = await unary(raw, 'GetBalance', { accountId: 'ask' }, { metadata: asked });
    expect(r.servedBy).toBe('n1');
    const advice = parseAdvice(r.metadata.get('peerbroker-advice')[0]);
    expect(advice?.shares.map((x) => x.endpoint).sort()).toEqual([n1.endpoint, n2.endpoint, n3.endpoint].sort());
    // A call that does not ask is answered without it, and so is one of a client that only follows.
    const plain = await unary(raw, 'GetBalance', { accountId: 'no-ask' }, { metadata: followMetadata() });
    expect(plain.metadata.get('peerbroker-advice')).toEqual([]);
    const followOnly = followMetadata();
    followOnly.set('peerbroker-advise-me', '1');
    const only = await unary(raw, 'GetBalance', { accountId: 'follow-only' }, { metadata: followOnly });
    expect(only.metadata.get('peerbroker-advice')).toEqual([]);
  });

  it('sends the calls of a following client over threshold to the idle peer, never to the saturated one', async () => {
    // n1 at 0.75, n2 saturated by its own direct traffic (1.0), n3 idle.
    hold(n1, 3);
    hold(n2, 4);
    await waitForLoad(n1, n1, 0.75);
    await waitForLoad(n1, n2, 1);
    await waitForLoad(n1, n3, 0);
    await waitFor(() => n3.members().find((m) => m.nodeId === 'n1' && m.load === 0.75), 10_000, 20, 'n3 to see n1 loaded');

    const client = bankClient([n1.endpoint]);
    const before = { n1: n1.stats, n2: n2.stats, n3: n3.stats };
    // A burst n3 can absorb: once n3 has a queue too, a saturated node's queue is room as well.
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => unary(client, 'GetBalance', { accountId: `burst-${i}` })),
    );
    const served = results.map((r) => r.servedBy);
    const onPeers = served.filter((s) => s !== 'n1');
    expect(onPeers.length).toBeGreaterThan(0);
    expect(new Set(onPeers)).toEqual(new Set(['n3']));
    expect(n3.stats.run - before.n3.run).toBe(onPeers.length);
    // Every redirect followed came from n1 (to n3), or from n3 bouncing a call back once it filled up.
    const redirected = n1.stats.redirected - before.n1.redirected + (n3.stats.redirected - before.n3.redirected);
    expect(client.peerbroker.stats.redirectsFollowed).toBe(redirected);
    expect(n1.stats.redirected - before.n1.redirected).toBeGreaterThanOrEqual(onPeers.length);
    // None went to n2, whose slots were all held by its own streams: it ran and redirected nothing of the burst.
    expect(n2.stats.run - before.n2.run).toBe(0);
    expect(n2.stats.redirected - before.n2.redirected).toBe(0);
  });

  it('runs calls here when every peer is as loaded as this node (none lower by the margin)', async () => {
    hold(n1, 3);
    hold(n2, 3);
    hold(n3, 3);
    await waitForLoad(n1, n1, 0.75);
    await waitForLoad(n1, n2, 0.75);
    await waitForLoad(n1, n3, 0.75);

    const client = bankClient([n1.endpoint]);
    const before = n1.stats;
    const served: string[] = [];
    // One at a time: each call arrives at load 0.75, over threshold, with no peer at 0.55 or less.
    for (let i = 0; i < 10; i++) served.push((await unary(client, 'GetBalance', { accountId: `eq-${i}` })).servedBy!);
    expect(served).toEqual(Array(10).fill('n1'));
    expect(client.peerbroker.stats.redirectsFollowed).toBe(0);
    expect(n1.stats.redirected - before.redirected).toBe(0);

    // A raw following call says the same: served here, with the node's id in the headers.
    const raw = await unary(plainBankClient(n1.endpoint), 'GetBalance', { accountId: 'raw' }, { metadata: followMetadata() });
    expect(raw.servedBy).toBe('n1');
    expect(raw.metadata.get('peerbroker-node')).toEqual(['n1']);
  });
});

describe('a small node beside a big idle one', () => {
  const nats = natsForSuite();

  it('loses no call of a burst while the big node has room: its busy slots are not "full", its queue is room', async () => {
    // A new user's two nodes: n1 with 2 slots (8 may wait), n2 with 8 (32 may wait), idle.
    const [n1, n2] = await startBrokerGroup(['n1', 'n2'], { nats: [nats().url], cluster: 'small-big', periodMs: PERIOD_MS, workMs: 200 }, {
      n1: { capacity: 2 },
      n2: { capacity: 8 },
    });
    const client = bankClient([n1.endpoint]);
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) => unary(client, 'GetBalance', { accountId: `b${i}` }, { timeoutMs: 10_000 })),
    );
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
    expect(failed).toEqual([]);
    const onN2 = results.filter((r) => r.status === 'fulfilled' && r.value.servedBy === 'n2').length;
    expect(onN2).toBeGreaterThanOrEqual(20);
    await Promise.all([n1.stop(), n2.stop()]);
  });
});
