import * as grpc from '@grpc/grpc-js';
import { status, type ServiceError } from '@grpc/grpc-js';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSubject, type Broker } from '../../src';
import { encodeReport } from '../../src/cluster/report-codec';
import {
  bankClient,
  callError,
  fakeReport,
  followMetadata,
  holdSlots,
  plainBankClient,
  serverStream,
  sleep,
  startBroker,
  startBrokerGroup,
  unary,
  waitFor,
  waitForLoad,
  type SlotHold,
} from '../helpers/brokers';
import type { NatsServerHandle } from '../helpers/nats';
import { natsForSuite } from '../helpers/suite';

const PERIOD_MS = 200;

/** Starts n1 and n2 in their own cluster and waits until each sees the other ONLINE. */
async function pair(nats: NatsServerHandle, cluster: string, over: { n1?: object; n2?: object } = {}): Promise<[Broker, Broker]> {
  const common = { nats: [nats.url], cluster, capacity: 4, threshold: 0.5, margin: 0.2, periodMs: PERIOD_MS, workMs: 20 };
  const n1 = await startBroker({ nodeId: 'n1', ...common, ...over.n1 });
  const n2 = await startBroker({ nodeId: 'n2', ...common, ...over.n2 });
  for (const b of [n1, n2]) {
    await waitFor(() => b.members().every((m) => m.status === 'ONLINE') && b.members().length === 2, 15_000, 20, `${b.nodeId} to see its peer`);
  }
  return [n1, n2];
}

/** A pair where n1 runs three long plain streams (load 0.75) and n2 is idle, as each sees the other. */
async function loadedPair(nats: NatsServerHandle, cluster: string, over: { n1?: object; n2?: object } = {}) {
  const [n1, n2] = await pair(nats, cluster, over);
  const hold = holdSlots(n1.endpoint, 3);
  await waitForLoad(n2, n1, 0.75);
  await waitForLoad(n1, n2, 0);
  return { n1, n2, stop: () => (hold.release(), Promise.all([n1.stop(), n2.stop()])) };
}

describe('the redirect-following stub', () => {
  const nats = natsForSuite();

  describe('with n1 over threshold and n2 idle', () => {
    let n1: Broker;
    let n2: Broker;
    let stop: (() => Promise<unknown>) | undefined;

    beforeAll(async () => {
      ({ n1, n2, stop } = await loadedPair(nats(), 'stub-follow'));
    });

    afterAll(() => stop?.());

    it('completes a redirected unary call on the peer, with the peer named in the headers', async () => {
      const client = bankClient([n1.endpoint]);
      const r = await unary(client, 'GetBalance', { accountId: 'u1' });
      expect(r.servedBy).toBe('n2');
      expect(r.metadata.get('peerbroker-node')).toEqual(['n2']);
      // The redirect's trailers never reach the application as headers.
      expect(r.metadata.get('peerbroker-location')).toEqual([]);
      expect(client.peerbroker.stats.redirectsFollowed).toBe(1);
    });

    it('completes a redirected server-streaming call: every message arrives, in order, from the peer', async () => {
      const client = bankClient([n1.endpoint]);
      const r = await serverStream<{ index: number; servedBy: string }>(client, 'StreamStatements', { accountId: 's1', count: 25 });
      expect(r.messages.map((m) => m.index)).toEqual(Array.from({ length: 25 }, (_, i) => i));
      expect(r.servedBy).toEqual(['n2']);
      expect(client.peerbroker.stats.redirectsFollowed).toBe(1);
    });

    it('shows the application one call: one metadata and one OK status event, from the peer, never the redirect', async () => {
      const client = bankClient([n1.endpoint]);
      const events: string[] = [];
      const value = await new Promise<{ servedBy: string }>((resolve, reject) => {
        const call = client.GetBalance({ accountId: 'ev1' }, (err: ServiceError | null, v?: { servedBy: string }) => (err ? reject(err) : resolve(v!)));
        call.on('metadata', (m: grpc.Metadata) => events.push(`metadata ${String(m.get('peerbroker-node')[0])}`));
        call.on('status', (st: grpc.StatusObject) => events.push(`status ${st.code}`));
      });
      await sleep(20);
      expect(value.servedBy).toBe('n2');
      expect(events).toEqual(['metadata n2', `status ${status.OK}`]);
    });

    it('runs calls given per-call interceptors through them, and still follows the redirect (unary and server-streaming)', async () => {
      const client = bankClient([n1.endpoint]);
      let seen = 0;
      const counting: grpc.Interceptor = (options, nextCall) => {
        seen++;
        return new grpc.InterceptingCall(nextCall(options));
      };
      const r = await unary(client, 'GetBalance', { accountId: 'ic1' }, { interceptors: [counting] });
      expect(r.servedBy).toBe('n2');
      expect(seen).toBe(1);
      // A new client: this one learned from the redirect where to send its next calls.
      const fresh = bankClient([n1.endpoint]);
      const streamed = await serverStream(fresh, 'StreamStatements', { accountId: 'ic2', count: 3 }, { interceptors: [counting] });
      expect(streamed.servedBy).toEqual(['n2']);
      expect(seen).toBe(2);
    });

    it('keeps one channel per endpoint however many calls it redirects or spreads', async () => {
      const client = bankClient([n1.endpoint]);
      const first = await unary(client, 'GetBalance', { accountId: 'p0' });
      expect(first.servedBy).toBe('n2');
      const channelToN2 = client.peerbroker.pool.channel(n2.endpoint);
      let onN2 = 1;
      for (let round = 0; round < 15; round++) {
        const results = await Promise.all([0, 1].map((i) => unary(client, 'GetBalance', { accountId: `p${round}-${i}` })));
        for (const r of results) expect(['n1', 'n2']).toContain(r.servedBy);
        onN2 += results.filter((r) => r.servedBy === 'n2').length;
        await sleep(PERIOD_MS / 4);
      }
      // Redirected, or sent there at once by the advice the redirects carried.
      expect(onN2).toBeGreaterThanOrEqual(10);
      const endpoints = client.peerbroker.pool.endpoints();
      expect(endpoints.length).toBeLessThanOrEqual(2);
      expect(new Set(endpoints)).toEqual(new Set([n1.endpoint, n2.endpoint]));
      expect(client.peerbroker.pool.channel(n2.endpoint)).toBe(channelToN2);
    });

    it('fails no call because of its channel bound, and closes channels left idle', async () => {
      const client = bankClient([n1.endpoint], { maxChannels: 1, channelIdleMs: 100 });
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => unary(client, 'GetBalance', { accountId: `cap${i}` })));
      expect(results.map((r) => r.servedBy)).toContain('n2');
      expect(client.peerbroker.pool.endpoints().length).toBeLessThanOrEqual(1);
      await waitFor(() => client.peerbroker.pool.endpoints().length === 0, 2_000, 20, 'the idle channel to close');
      expect(['n1', 'n2']).toContain((await unary(client, 'GetBalance', { accountId: 'cap-after' })).servedBy);
    });
  });

  describe('deadlines and cancel', () => {
    const DEADLINE_MS = 400;
    const DELAY_MS = 200; // spent on the client before the first attempt goes out
    const PEER_WORK_MS = 300; // fits a fresh deadline, not the 200 ms that remain
    let n1: Broker;
    let n2: Broker;
    let stop: (() => Promise<unknown>) | undefined;

    beforeAll(async () => {
      ({ n1, n2, stop } = await loadedPair(nats(), 'stub-deadline', { n2: { workMs: PEER_WORK_MS } }));
    });

    afterAll(() => stop?.());

    it('a redirected call on its own would fit the deadline (the control)', async () => {
      const r = await unary(plainBankClient(n2.endpoint), 'GetBalance', { accountId: 'control' }, { timeoutMs: DEADLINE_MS });
      expect(r.servedBy).toBe('n2');
    });

    it('keeps the original deadline across a redirect: DEADLINE_EXCEEDED at the deadline, not later', async () => {
      // A slow interceptor in front of the stub: time spent before the redirect counts against the deadline.
      const slowStart: grpc.Interceptor = (options, nextCall) =>
        new grpc.InterceptingCall(nextCall(options), {
          start(md, listener, next) {
            setTimeout(() => next(md, listener), DELAY_MS);
          },
        });
      const client = bankClient([n1.endpoint], { interceptors: [slowStart] });
      const runBefore = n2.stats.run;
      const startedAt = Date.now();
      const err = await callError(unary(client, 'GetBalance', { accountId: 'late' }, { timeoutMs: DEADLINE_MS }));
      const elapsed = Date.now() - startedAt;
      expect(err.code).toBe(status.DEADLINE_EXCEEDED);
      expect(client.peerbroker.stats.redirectsFollowed).toBe(1);
      expect(n2.stats.run).toBe(runBefore + 1);
      expect(elapsed).toBeGreaterThanOrEqual(DEADLINE_MS - 20);
      // A fresh deadline would have answered OK at about DELAY_MS + PEER_WORK_MS = 500 ms.
      expect(elapsed).toBeLessThan(DELAY_MS + PEER_WORK_MS);
    });

    // The same without interceptors: the stub's direct unary path.
    it('keeps the deadline on the redirected attempt: DEADLINE_EXCEEDED at the deadline, not an answer after the peer worked', async () => {
      const client = bankClient([n1.endpoint]);
      const startedAt = Date.now();
      const err = await callError(unary(client, 'GetBalance', { accountId: 'dl1' }, { timeoutMs: 150 }));
      const elapsed = Date.now() - startedAt;
      expect(err.code).toBe(status.DEADLINE_EXCEEDED);
      expect(client.peerbroker.stats.redirectsFollowed).toBe(1);
      expect(elapsed).toBeLessThan(PEER_WORK_MS);
    });

    it('cancels a redirected call on the peer: CANCELLED once, through the callback and the status event', async () => {
      const client = bankClient([n1.endpoint]);
      const outcomes: string[] = [];
      const done = new Promise<void>((resolve) => {
        const call = client.GetBalance({ accountId: 'cx1' }, (err: ServiceError | null) => {
          outcomes.push(`callback ${err?.code}`);
          resolve();
        });
        call.on('status', (st: grpc.StatusObject) => outcomes.push(`status ${st.code}`));
        setTimeout(() => call.cancel(), 100);
      });
      await done;
      await sleep(PEER_WORK_MS);
      expect(client.peerbroker.stats.redirectsFollowed).toBe(1);
      expect(outcomes).toEqual([`callback ${status.CANCELLED}`, `status ${status.CANCELLED}`]);
    });

    it('fails a request that cannot be serialized with INTERNAL and sends nothing', async () => {
      const client = bankClient([n1.endpoint]);
      const runBefore = n1.stats.run + n2.stats.run;
      const err = await callError(unary(client, 'GetBalance', null as unknown as object));
      expect(err.code).toBe(status.INTERNAL);
      expect(err.details).toMatch(/serialization failure/);
      expect(n1.stats.run + n2.stats.run).toBe(runBefore);
    });
  });

  describe('hop limit (n1 with a queue, n2 full, each told the other is idle)', () => {
    let n1: Broker;
    let n2: Broker;
    let holds: SlotHold[] = [];
    let nc: NatsConnection | undefined;
    let liar: NodeJS.Timeout | undefined;

    beforeAll(async () => {
      // Reported load only (no local accounting), so every decision is the same.
      [n1, n2] = await pair(nats(), 'stub-hops', { n1: { peerChoice: 'least-loaded' }, n2: { peerChoice: 'least-loaded', maxQueue: 1 } });
      // Both at 4 running and 1 waiting: n1 sends new calls on (load 1.25), and n2, whose
      // queue is full, moves on even a call that already followed a redirect while the hop
      // limit allows (a node with queue room keeps a moved call).
      holds = [holdSlots(n1.endpoint, 5), holdSlots(n2.endpoint, 5)];
      const inFlight = (b: Broker) => b.members()[0].inFlight + b.members()[0].queued;
      await waitFor(() => inFlight(n1) === 5 && inFlight(n2) === 5, 10_000, 20, 'both nodes at 4 running and 1 waiting');
      // A newer incarnation claiming load 0 for each: the real reports are now old and dropped.
      nc = await connect({ servers: nats().url });
      const incarnation = Date.now();
      let seq = 0;
      const lie = () => {
        seq++;
        for (const b of [n1, n2]) {
          const r = fakeReport({ cluster: 'stub-hops', nodeId: b.nodeId, endpoint: b.endpoint, incarnation, seq, load: 0 });
          nc!.publish(loadSubject('stub-hops', b.nodeId), encodeReport(r));
        }
      };
      lie();
      liar = setInterval(lie, 50);
      await waitFor(
        () =>
          n1.members().find((m) => m.nodeId === 'n2' && m.load === 0 && m.status === 'ONLINE') &&
          n2.members().find((m) => m.nodeId === 'n1' && m.load === 0 && m.status === 'ONLINE'),
        10_000,
        20,
        'each node to see the other at load 0',
      );
    });

    afterAll(async () => {
      clearInterval(liar);
      await nc?.close();
      for (const h of holds) h.release();
      await Promise.all([n1?.stop(), n2?.stop()]);
    });

    it('a full node bounces a following call with fewer hops than the limit, and refuses one at the limit', async () => {
      const raw = plainBankClient(n2.endpoint);
      const bounced = await callError(unary(raw, 'GetBalance', { accountId: 'h1' }, { metadata: followMetadata(1) }));
      expect(bounced.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(bounced.metadata.get('peerbroker-location-node')).toEqual(['n1']);
      // At the limit it is not bounced: with no queue room it is refused here, naming no peer.
      const atLimit = await callError(unary(raw, 'GetBalance', { accountId: 'h2' }, { metadata: followMetadata(2) }));
      expect(atLimit.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(atLimit.details).toContain("node 'n2' is at capacity");
      expect(atLimit.metadata.get('peerbroker-location')).toEqual([]);
    });

    it('a node with queue room keeps a call that already moved, however loaded, and waits with it for a slot', async () => {
      const raw = plainBankClient(n1.endpoint);
      const kept = await callError(unary(raw, 'GetBalance', { accountId: 'h3' }, { metadata: followMetadata(1), timeoutMs: 300 }));
      expect(kept.code).toBe(status.DEADLINE_EXCEEDED);
      expect(kept.metadata.get('peerbroker-location')).toEqual([]);
    });

    it('gives up with a clear error when a call needs more redirects than maxRedirects allows', async () => {
      const client = bankClient([n1.endpoint], { maxRedirects: 1 });
      const before = { n1: n1.stats.run, n2: n2.stats.run };
      const err = await callError(unary(client, 'GetBalance', { accountId: 'give-up' }, { timeoutMs: 5_000 }));
      expect(err.details).toContain('gave up after 1 redirects');
      expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(client.peerbroker.stats.redirectsFollowed).toBe(1);
      // Nothing ran anywhere.
      expect(n1.stats.run).toBe(before.n1);
      expect(n2.stats.run).toBe(before.n2);
    });

    it('follows at most maxHops (2) redirects between two loaded nodes, then the call runs where it is', async () => {
      const client = bankClient([n1.endpoint]);
      const before = { n1: n1.stats, n2: n2.stats };
      const call = unary(client, 'GetBalance', { accountId: 'pp' }, { timeoutMs: 10_000 });
      // n1 → n2 → n1, where the hop limit stops the bouncing: it waits there for a slot.
      await waitFor(() => n1.members()[0].queued === 2, 5_000, 20, 'the call to wait on n1');
      holds[0].release();
      const r = await call;
      expect(r.servedBy).toBe('n1');
      expect(client.peerbroker.stats.redirectsFollowed).toBe(2);
      expect(n1.stats.redirected - before.n1.redirected).toBe(1);
      expect(n2.stats.redirected - before.n2.redirected).toBe(1);
    });
  });
});

describe('a stub that learns from redirects', () => {
  const nats = natsForSuite();

  it('stops paying a redirect per call: after the first ones, calls go straight where the nodes advise', async () => {
    // Three nodes of 4 slots, 40 ms a call; waves of 6 calls all sent to n1 would keep n1 over
    // its threshold, so a client that only follows redirects pays one on most calls.
    const nodes = await startBrokerGroup(['n1', 'n2', 'n3'], { nats: [nats().url], cluster: 'stub-learns', capacity: 4, periodMs: PERIOD_MS, workMs: 40 });
    const [n1] = nodes;
    const client = bankClient([n1.endpoint]);
    const wave = (k: number) => Promise.all(Array.from({ length: 6 }, (_, i) => unary(client, 'GetBalance', { accountId: `w${k}-${i}` })));
    for (let k = 0; k < 5; k++) await wave(k); // learning
    const before = client.peerbroker.stats.redirectsFollowed;
    const served: string[] = [];
    for (let k = 5; k < 25; k++) served.push(...(await wave(k)).map((r) => r.servedBy!));
    const redirects = client.peerbroker.stats.redirectsFollowed - before;
    // 120 calls: every node ran some, and at most one call in five paid a redirect.
    expect(new Set(served)).toEqual(new Set(['n1', 'n2', 'n3']));
    expect(redirects).toBeLessThanOrEqual(24);
    expect(Object.keys(client.peerbroker.routing.shares()).length).toBeGreaterThan(1);
    await Promise.all(nodes.map((b) => b.stop()));
  });
});
