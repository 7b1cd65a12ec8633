import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Broker } from '../../src';
import type { ChannelPool, PooledChannel } from '../../src/transport';
import { followMetadata, holdSlots, plainBankClient, sleep, startBrokerGroup, unary, waitForLoad, type SlotHold, type UnaryResult } from '../helpers/brokers';
import { natsForSuite } from '../helpers/suite';

// A node that forwards a plain client's call (forwardLegacy) marks it, so the peer runs
// it or fails it and never redirects it: the client could not follow a redirect. This
// holds whatever the two nodes' hop limits, also after `config set max-hops`.

describe('a call forwarded for a plain client (two in-process brokers)', () => {
  const nats = natsForSuite();
  let n1: Broker;
  let n2: Broker;
  let hold: SlotHold | undefined;

  beforeAll(async () => {
    [n1, n2] = await startBrokerGroup(
      ['n1', 'n2'],
      { nats: [nats().url], cluster: 'forwarded', capacity: 4, periodMs: 200, peerChoice: 'least-loaded', workMs: 5 },
      {
        n1: { forwardLegacy: true, threshold: 0.5 },
        // n2 would send GetBalance to its home n1 while n1 is below 0.9: a redirect, if it were allowed.
        n2: { threshold: 0.9, dedicated: { 'bank.Banking/GetBalance': ['n1'] } },
      },
    );
  });

  afterAll(() => hold?.release());

  it('runs on the peer it was forwarded to, never redirected, after both nodes raised max-hops', async () => {
    // What `peerbroker config set max-hops=5` does on every node.
    n1.configure({ maxHops: 5 });
    n2.configure({ maxHops: 5 });
    // n1 at 0.75 (over its threshold), n2 idle: n1 forwards plain calls to n2.
    hold = holdSlots(n1.endpoint, 3, 10_000, followMetadata(9));
    await waitForLoad(n2, n1, 0.75);
    await waitForLoad(n1, n2, 0);

    const client = plainBankClient(n1.endpoint);
    const forwardedBefore = n1.stats.forwarded;
    const redirectedByN2 = n2.stats.redirected;
    for (let i = 0; i < 3; i++) {
      const r = await unary(client, 'GetBalance', { accountId: `f${i}` }, { timeoutMs: 5_000 });
      expect(r.servedBy).toBe('n2');
    }
    expect(n1.stats.forwarded - forwardedBefore).toBe(3);
    expect(n2.stats.redirected - redirectedByN2).toBe(0);
  });

  it('holds its pooled channel to the peer for each forwarded call, and gives it back when the call ends', async () => {
    // A channel no call holds may be closed by the pool's bound or idle sweep under a starting call.
    const pool = (n1 as unknown as { forwarder: { pool: ChannelPool } }).forwarder.pool;
    const acquire = vi.spyOn(pool, 'acquire');
    const release = vi.spyOn(pool, 'release');
    const client = plainBankClient(n1.endpoint);
    const forwardedBefore = n1.stats.forwarded;
    for (let i = 0; i < 3; i++) {
      expect((await unary(client, 'GetBalance', { accountId: `h${i}` }, { timeoutMs: 5_000 })).servedBy).toBe('n2');
    }
    expect(n1.stats.forwarded - forwardedBefore).toBe(3);
    expect(acquire).toHaveBeenCalledTimes(3);
    expect(release).toHaveBeenCalledTimes(3);
    expect(acquire.mock.calls.map((c) => c[0])).toEqual([n2.endpoint, n2.endpoint, n2.endpoint]);
    expect((acquire.mock.results[2].value as PooledChannel).held).toBe(0);
    acquire.mockRestore();
    release.mockRestore();
  });
});

describe('cancels of forwarded calls (two in-process brokers)', () => {
  const nats = natsForSuite();

  it('keeps the connection to the peer when many plain clients cancel forwarded calls: no call on it fails', async () => {
    // n1 hosts no Banking and forwards plain clients' Banking calls to n2 (200 ms each). Node's
    // HTTP/2 server closes a connection past 1 000 stream resets (then 33 a second), and every
    // forwarded call shares n1's one connection to n2: 1 500 cancels would close it.
    const [n1] = await startBrokerGroup(
      ['n1', 'n2'],
      { nats: [nats().url], cluster: 'forward-cancels', capacity: 4_000, periodMs: 200, workMs: 200 },
      { n1: { forwardLegacy: true, services: ['bank.Securities'] } },
    );
    // Ten clients of their own connection each, so none passes the limit on its connection to n1.
    const clients = Array.from({ length: 10 }, (_, i) => plainBankClient(n1.endpoint, undefined, { 'grpc.use_local_subchannel_pool': 1, 'test.client': i }));
    const cancelled: Promise<unknown>[] = [];
    // Witnesses: calls that are not cancelled, forwarded all along, each in flight for 200 ms
    // while the cancels go by: a closed connection would fail those on it.
    const witnesses: Array<Promise<UnaryResult<unknown>>> = [];
    for (let i = 0; i < 1_500; i++) {
      cancelled.push(
        new Promise((resolve) => {
          const call = clients[i % 10].GetBalance({ accountId: `c${i}` }, () => resolve(undefined));
          setTimeout(() => call.cancel(), 20);
        }),
      );
      if (i % 50 === 25) witnesses.push(unary(clients[i % 10], 'GetBalance', { accountId: `w${i}` }, { timeoutMs: 5_000 }));
      if (i % 100 === 99) await sleep(50);
    }
    const settled = await Promise.allSettled(witnesses);
    await Promise.all(cancelled);
    const failed = settled.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
    expect(failed).toEqual([]);
    expect(settled.map((r) => (r.status === 'fulfilled' ? r.value.servedBy : ''))).toEqual(Array(30).fill('n2'));
  });
});
