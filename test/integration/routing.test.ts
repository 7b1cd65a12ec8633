import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src';
import {
  bankClient,
  brokerStatus,
  callError,
  followMetadata,
  holdSlots,
  members,
  plainBankClient,
  plainSecuritiesClient,
  securitiesClient,
  serverStream,
  startBrokerGroup,
  startBrokerProcess,
  unary,
  waitFor,
  waitForLoad,
  waitForMembers,
  type BrokerProcess,
  type SlotHold,
} from '../helpers/brokers';
import { natsForSuite } from '../helpers/suite';

// Capacity 4: every call in flight is 0.25 of load; threshold 0.5, margin 0.2.
const CAPACITY = 4;
// A peer gets redirects only while its last report is under two periods old: the default
// period keeps that true on a busy two-core machine (load crossings are reported at once).
const PERIOD_MS = 500;

describe('routing by service', () => {
  const nats = natsForSuite();

  describe('hosts chosen with --services (three broker processes)', () => {
    // n1 hosts Banking only; n2 hosts Banking and Securities; n3 hosts Banking only and forwards plain calls.
    let n1: BrokerProcess;
    let n2: BrokerProcess;
    let n3: BrokerProcess;

    beforeAll(async () => {
      const common = {
        nats: [nats().url],
        cluster: 'routing-services',
        capacity: CAPACITY,
        threshold: 0.5,
        margin: 0.2,
        periodMs: PERIOD_MS,
        env: { BANK_WORK_MS: '5' },
      };
      [n1, n2, n3] = await Promise.all([
        startBrokerProcess({ nodeId: 'n1', ...common, extraArgs: ['--services', 'bank.Banking'] }),
        startBrokerProcess({ nodeId: 'n2', ...common, extraArgs: ['--services', 'bank.Banking,bank.Securities'] }),
        startBrokerProcess({ nodeId: 'n3', ...common, extraArgs: ['--services', 'bank.Banking', '--forward-legacy'] }),
      ]);
      for (const b of [n1, n2, n3]) await waitForMembers(b.endpoint, { n1: 'ONLINE', n2: 'ONLINE', n3: 'ONLINE' });
    });

    afterAll(async () => {
      await Promise.all([n1, n2, n3].map((b) => b?.kill9()));
    });

    it('reports the services each node hosts, as given by --services', async () => {
      const list = await members(n1.endpoint);
      const services = Object.fromEntries(list.map((m) => [m.nodeId, [...m.services].sort()]));
      expect(services).toEqual({
        n1: ['bank.Banking'],
        n2: ['bank.Banking', 'bank.Securities'],
        n3: ['bank.Banking'],
      });
    });

    it('redirects a following call for a service it does not host to the host, with reason service', async () => {
      const before = await brokerStatus(n1.endpoint);
      const err = await callError(
        unary(plainSecuritiesClient(n1.endpoint), 'GetQuote', { symbol: 'ACME' }, { metadata: followMetadata() }),
      );
      expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(err.metadata.get('peerbroker-location')).toEqual([n2.endpoint]);
      expect(err.metadata.get('peerbroker-location-node')).toEqual(['n2']);
      expect(err.metadata.get('peerbroker-reason')).toEqual(['service']);
      expect(err.details).toBe(
        `peerbroker: redirected to n2 (${n2.endpoint}): service 'bank.Securities' is not hosted on n1`,
      );
      const after = await brokerStatus(n1.endpoint);
      expect(Number(after.callsRun) - Number(before.callsRun)).toBe(0);
      expect(Number(after.callsRedirected) - Number(before.callsRedirected)).toBe(1);
    });

    it('lets the stub complete unary and server-streaming calls for a service on the node that hosts it', async () => {
      const client = securitiesClient([n1.endpoint]);
      const quote = await unary(client, 'GetQuote', { symbol: 'ACME' });
      expect(quote.servedBy).toBe('n2');
      expect(quote.metadata.get('peerbroker-node')).toEqual(['n2']);
      const quotes = await serverStream(client, 'WatchQuotes', { symbols: ['ACME', 'INIT'], count: 6 });
      expect(quotes.messages.map((q) => q.symbol)).toEqual(['ACME', 'INIT', 'ACME', 'INIT', 'ACME', 'INIT']);
      expect(quotes.servedBy).toEqual(['n2']);
      // Only the first call was redirected: its advice named n2 alone, so the stream went there at once.
      expect(client.peerbroker.stats.redirectsFollowed).toBe(1);
      // A service n1 hosts stays on n1.
      expect((await unary(bankClient([n1.endpoint]), 'GetBalance', { accountId: 'local' })).servedBy).toBe('n1');
    });

    it('answers a plain client with UNIMPLEMENTED for a service it does not host when forwardLegacy is off', async () => {
      const err = await callError(unary(plainSecuritiesClient(n1.endpoint), 'GetQuote', { symbol: 'ACME' }));
      expect(err.code).toBe(status.UNIMPLEMENTED);
      expect(err.details).toBe(
        "peerbroker: service 'bank.Securities' is not hosted on node 'n1'; it is hosted on n2, but this client does not follow redirects",
      );
      const stream = await callError(serverStream(plainSecuritiesClient(n1.endpoint), 'WatchQuotes', { symbols: ['ACME'], count: 2 }));
      expect(stream.code).toBe(status.UNIMPLEMENTED);
    });

    it('forwards unary and server-streaming calls of a plain client to the host when forwardLegacy is on', async () => {
      const plain = plainSecuritiesClient(n3.endpoint);
      const before = await brokerStatus(n2.endpoint);
      const quote = await unary(plain, 'GetQuote', { symbol: 'ACME' });
      expect(quote.servedBy).toBe('n2');
      expect(quote.value).toMatchObject({ symbol: 'ACME' });
      const quotes = await serverStream(plain, 'WatchQuotes', { symbols: ['A', 'B', 'C'], count: 9 });
      expect(quotes.messages.map((q) => q.symbol)).toEqual(['A', 'B', 'C', 'A', 'B', 'C', 'A', 'B', 'C']);
      expect(quotes.servedBy).toEqual(['n2']);
      const after = await brokerStatus(n2.endpoint);
      expect(Number(after.callsRun) - Number(before.callsRun)).toBe(2);
    });

    it('forwards a bidi call of a plain client and relays every answer in order', async () => {
      const call = plainSecuritiesClient(n3.endpoint).Trade();
      const fills: Array<{ orderId: string; servedBy: string }> = [];
      const done = new Promise<void>((resolve, reject) => {
        call.on('data', (f: { orderId: string; servedBy: string }) => fills.push(f));
        call.on('error', reject);
        call.on('end', resolve);
      });
      for (let i = 0; i < 8; i++) call.write({ orderId: `o${i}`, symbol: 'ACME', quantity: 1 });
      call.end();
      await done;
      expect(fills.map((f) => f.orderId)).toEqual(Array.from({ length: 8 }, (_, i) => `o${i}`));
      expect(new Set(fills.map((f) => f.servedBy))).toEqual(new Set(['n2']));
    });

    it('forwards a plain call over threshold to a less-loaded peer when forwardLegacy is on', async () => {
      // Three calls at the hop limit keep n3 at 0.75: they run there, forwarded nowhere.
      const hold = holdSlots(n3.endpoint, 3, 10_000, followMetadata(2));
      try {
        await waitFor(
          async () => (await members(n3.endpoint)).find((m) => m.nodeId === 'n3')!.load === 0.75,
          10_000,
          20,
          'n3 at load 0.75',
        );
        const r = await unary(plainBankClient(n3.endpoint), 'GetBalance', { accountId: 'fwd' });
        expect(['n1', 'n2']).toContain(r.servedBy);
      } finally {
        hold.release();
      }
    });

    it('fails with UNIMPLEMENTED saying no online node hosts the service once its only host has left', async () => {
      await n2.stop();
      await waitForMembers(n1.endpoint, { n1: 'ONLINE', n3: 'ONLINE' });
      await waitForMembers(n3.endpoint, { n1: 'ONLINE', n3: 'ONLINE' });
      const following = await callError(unary(securitiesClient([n1.endpoint]), 'GetQuote', { symbol: 'ACME' }));
      expect(following.code).toBe(status.UNIMPLEMENTED);
      expect(following.details).toBe("peerbroker: no online node hosts service 'bank.Securities'");
      // A plain client of a forwarding node is told the same.
      const forwarded = await callError(unary(plainSecuritiesClient(n3.endpoint), 'GetQuote', { symbol: 'ACME' }));
      expect(forwarded.code).toBe(status.UNIMPLEMENTED);
      expect(forwarded.details).toContain('no online node hosts');
    });
  });

  describe("dedicated homes: { 'bank.Securities/*': ['n2'] } (three in-process brokers)", () => {
    let n1: Broker;
    let n2: Broker;
    let n3: Broker;
    let holds: SlotHold[] = [];

    beforeAll(async () => {
      [n1, n2, n3] = await startBrokerGroup(['n1', 'n2', 'n3'], {
        nats: [nats().url],
        cluster: 'routing-dedicated',
        capacity: CAPACITY,
        threshold: 0.5,
        margin: 0.2,
        periodMs: PERIOD_MS,
        workMs: 5,
        peerChoice: 'least-loaded',
        dedicated: { 'bank.Securities/*': ['n2'] },
      });
    });

    afterEach(async () => {
      for (const h of holds) h.release();
      holds = [];
      for (const b of [n1, n2, n3]) await waitForLoad(n1, b, 0);
    });

    it('sends calls of the dedicated service to their home while the home is below threshold', async () => {
      const raw = await callError(unary(plainSecuritiesClient(n3.endpoint), 'GetQuote', { symbol: 'X' }, { metadata: followMetadata() }));
      expect(raw.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(raw.metadata.get('peerbroker-location-node')).toEqual(['n2']);
      expect(raw.metadata.get('peerbroker-reason')).toEqual(['service']);

      const client = securitiesClient([n1.endpoint]);
      const served: string[] = [];
      for (let i = 0; i < 8; i++) served.push((await unary(client, 'GetQuote', { symbol: `S${i}` })).servedBy!);
      expect(served).toEqual(Array(8).fill('n2'));
      // Other services are balanced as usual: n1 is idle and keeps them.
      expect((await unary(bankClient([n1.endpoint]), 'GetBalance', { accountId: 'b' })).servedBy).toBe('n1');
    });

    it('shares the dedicated service among the other hosts while the home is over threshold', async () => {
      holds.push(holdSlots(n2.endpoint, 3), holdSlots(n1.endpoint, 1));
      for (const b of [n1, n3]) await waitForLoad(b, n2, 0.75);
      await waitForLoad(n2, n1, 0.25);
      await waitForLoad(n2, n3, 0);

      // A non-home below threshold runs it itself.
      const viaN1 = securitiesClient([n1.endpoint]);
      for (let i = 0; i < 4; i++) expect((await unary(viaN1, 'GetQuote', { symbol: `A${i}` })).servedBy).toBe('n1');
      // The loaded home sends it on to the least-loaded other host.
      const raw = await callError(unary(plainSecuritiesClient(n2.endpoint), 'GetQuote', { symbol: 'X' }, { metadata: followMetadata() }));
      expect(raw.metadata.get('peerbroker-location-node')).toEqual(['n3']);
      expect(raw.metadata.get('peerbroker-reason')).toEqual(['load']);
      expect((await unary(securitiesClient([n2.endpoint]), 'GetQuote', { symbol: 'Y' })).servedBy).toBe('n3');
    });

    it('goes back to the home once its load is below threshold again', async () => {
      const client = securitiesClient([n3.endpoint]);
      expect((await unary(client, 'GetQuote', { symbol: 'Z' })).servedBy).toBe('n2');
    });
  });
});
