import * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bankProto } from '../../examples/bank';
import { brokerProto, type Broker } from '../../src';
import {
  bankClient,
  callError,
  holdSlots,
  members,
  plainSecuritiesClient,
  securitiesClient,
  sleep,
  startBroker,
  startBrokerGroup,
  unary,
  waitFor,
  waitForLoad,
  type SlotHold,
} from '../helpers/brokers';
import { natsForSuite } from '../helpers/suite';

// Capacity 4: every call in flight is 0.25 of load; threshold 0.5, margin 0.2.
const CAPACITY = 4;
// A peer gets redirects only while its last report is under two periods old: the default
// period keeps that true on a busy two-core machine (load crossings are reported at once).
const PERIOD_MS = 500;

type Fill = { orderId: string; servedBy: string };
type Duplex = grpc.ClientDuplexStream<object, Fill>;

/** Collects what a bidi call answers, until it ends or fails. */
function outcome(call: Duplex): Promise<{ fills: Fill[]; error?: grpc.ServiceError; headers?: grpc.Metadata }> {
  return new Promise((resolve) => {
    const fills: Fill[] = [];
    let headers: grpc.Metadata | undefined;
    call.on('metadata', (m: grpc.Metadata) => (headers = m));
    call.on('data', (f: Fill) => fills.push(f));
    call.on('error', (error: grpc.ServiceError) => resolve({ fills, error, headers }));
    call.on('end', () => resolve({ fills, headers }));
  });
}

const order = (i: number) => ({ orderId: `o${i}`, symbol: 'ACME', quantity: i + 1 });
const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `o${from + i}`);

/** The calls running and queued that a node reports of itself. */
async function inFlight(endpoint: string, nodeId: string): Promise<number> {
  const m = (await members(endpoint)).find((m) => m.nodeId === nodeId)!;
  return m.inFlight + m.queued;
}

describe('client-streaming and bidi calls through the stub', () => {
  const nats = natsForSuite();

  describe('with n1 over threshold and n2 idle', () => {
    let n1: Broker;
    let n2: Broker;
    let hold: SlotHold | undefined;

    beforeAll(async () => {
      [n1, n2] = await startBrokerGroup(['n1', 'n2'], {
        nats: [nats().url],
        cluster: 'streaming',
        capacity: CAPACITY,
        threshold: 0.5,
        margin: 0.2,
        periodMs: PERIOD_MS,
        workMs: 2,
      });
      hold = holdSlots(n1.endpoint, 3);
      await waitForLoad(n2, n1, 0.75);
      await waitForLoad(n1, n2, 0);
    });

    // n2 is a redirect target only while n1 has a fresh report of it: check just before each call.
    beforeEach(() => waitForLoad(n1, n2, 0));

    afterAll(() => hold?.release());

    it('replays a redirected bidi call on the peer: every message answered, in order, by the peer', async () => {
      const client = securitiesClient([n1.endpoint]);
      const call = client.Trade() as Duplex;
      const result = outcome(call);
      // Written before any node accepted the call: held, then replayed on n2.
      for (let i = 0; i < 10; i++) call.write(order(i));
      await new Promise((resolve) => call.once('metadata', resolve));
      // Written after n2 accepted: straight through.
      for (let i = 10; i < 20; i++) call.write(order(i));
      call.end();
      const { fills, error, headers } = await result;
      expect(error).toBeUndefined();
      expect(fills.map((f) => f.orderId)).toEqual(ids(0, 20));
      expect(new Set(fills.map((f) => f.servedBy))).toEqual(new Set(['n2']));
      expect(headers?.get('peerbroker-node')).toEqual(['n2']);
      expect(client.peerbroker.stats.redirectsFollowed).toBe(1);
    });

    it('replays a redirected client-streaming call: the peer counts every message', async () => {
      const client = bankClient([n1.endpoint]);
      const runBefore = { n1: n1.stats.run, n2: n2.stats.run };
      const summary = await new Promise<{ count: number; totalCents: string; servedBy: string }>((resolve, reject) => {
        const call = client.DepositBatch((err, v) => (err ? reject(err) : resolve(v as never)));
        for (let i = 1; i <= 30; i++) call.write({ accountId: 'batch', amountCents: i });
        call.end();
      });
      expect(summary).toEqual({ count: 30, totalCents: String((30 * 31) / 2), servedBy: 'n2' });
      expect(n2.stats.run - runBefore.n2).toBe(1);
      expect(n1.stats.run - runBefore.n1).toBe(0);
    });

    it('cancels a redirected bidi call on the peer: CANCELLED here, the peer frees its slot', async () => {
      const call = securitiesClient([n1.endpoint]).Trade() as Duplex;
      const result = outcome(call);
      call.write(order(0));
      await waitFor(() => n2.load() === 0.25, 5_000, 5, 'the call running on n2');
      call.cancel();
      const { error } = await result;
      expect(error?.code).toBe(status.CANCELLED);
      await waitFor(() => n2.load() === 0, 5_000, 5, 'n2 to free the slot');
    });
  });

  describe('held by a node whose slots are all busy (one node, no peer to redirect to)', () => {
    let node: Broker;
    let hold: SlotHold | undefined;

    beforeAll(async () => {
      node = await startBroker({ nodeId: 'solo', nats: [nats().url], cluster: 'streaming-solo', capacity: 2, periodMs: PERIOD_MS, workMs: 2 });
    });

    beforeEach(async () => {
      // Both slots busy: a new call waits in the queue, and the node sends no headers until it starts.
      hold = holdSlots(node.endpoint, 2);
      await waitFor(() => node.load() === 1, 5_000, 5, 'solo at load 1');
    });

    afterEach(async () => {
      hold?.release();
      await waitFor(() => node.load() === 0, 5_000, 5, 'solo idle');
    });

    it('ends a held bidi call with DEADLINE_EXCEEDED at its deadline, as a plain grpc-js call does', async () => {
      const runBefore = node.stats.run;
      // Elapsed from the moment the deadline was set, however long making the call took.
      const run = async (make: (deadline: number) => Duplex) => {
        const started = Date.now();
        const call = make(started + 300);
        const result = outcome(call);
        call.write(order(0));
        call.write(order(1));
        const r = await result;
        return { ...r, elapsed: Date.now() - started };
      };
      const stub = await run((deadline) => securitiesClient([node.endpoint]).Trade({ deadline }) as Duplex);
      const plain = await run((deadline) => plainSecuritiesClient(node.endpoint).Trade({ deadline }) as unknown as Duplex);
      for (const r of [stub, plain]) {
        expect(r.error?.code).toBe(status.DEADLINE_EXCEEDED);
        expect(r.error?.message).toMatch(/^4 DEADLINE_EXCEEDED: Deadline exceeded after 0\.\d+s/);
        expect(r.fills).toEqual([]);
        expect(r.elapsed).toBeGreaterThanOrEqual(280);
        expect(r.elapsed).toBeLessThan(1_000);
      }
      // Nothing ran, and the queued calls left the queue.
      expect(node.stats.run).toBe(runBefore);
      await waitFor(async () => (await inFlight(node.endpoint, 'solo')) === 2, 2_000, 20, 'the queue to empty');
    });

    it('cancels a held bidi call: CANCELLED, as a plain grpc-js call, and it leaves the queue', async () => {
      const call = securitiesClient([node.endpoint]).Trade() as Duplex;
      const result = outcome(call);
      call.write(order(0));
      await waitFor(async () => (await inFlight(node.endpoint, 'solo')) === 3, 2_000, 10, 'the call queued');
      call.cancel();
      const { error, fills } = await result;
      expect(error?.code).toBe(status.CANCELLED);
      expect(error?.details).toBe('Cancelled on client');
      expect(fills).toEqual([]);
      await waitFor(async () => (await inFlight(node.endpoint, 'solo')) === 2, 2_000, 20, 'the queue to empty');
    });

    it('holds at most maxHeldMessages: past it write() waits, and every message goes once the node accepts', async () => {
      const call = securitiesClient([node.endpoint], { maxHeldMessages: 4 }).Trade() as Duplex;
      const result = outcome(call);
      let written = 0;
      let wroteAll = false;
      for (let i = 0; i < 10; i++) wroteAll = call.write(order(i), () => written++);
      // The fourth held message fills the buffer: its callback, and those of the messages after it, wait.
      await sleep(200);
      expect(written).toBe(3);
      expect(call.writableLength).toBe(7);
      expect(wroteAll).toBe(true); // below the stream's own highWaterMark (16)
      call.end();
      hold?.release();
      hold = undefined;
      const { fills, error } = await result;
      expect(error).toBeUndefined();
      expect(written).toBe(10);
      expect(fills.map((f) => f.orderId)).toEqual(ids(0, 10));
      expect(new Set(fills.map((f) => f.servedBy))).toEqual(new Set(['solo']));
    });
  });

  describe('cancelled while the stub follows a redirect', () => {
    // A stand-in for a node: it redirects every call to `target` and answers Members only after
    // MEMBERS_DELAY_MS, so the stub waits that long (to learn `target` is a member) between the
    // redirect and the next attempt. No real node can be held in that gap on purpose.
    const MEMBERS_DELAY_MS = 600;
    let membersDelayMs = MEMBERS_DELAY_MS;
    let target: Broker;
    let redirector: grpc.Server;
    let redirectorEndpoint: string;

    beforeAll(async () => {
      target = await startBroker({ nodeId: 'target', nats: [nats().url], cluster: 'streaming-cancel', periodMs: PERIOD_MS, workMs: 1 });
      const trailers = () => {
        const md = new grpc.Metadata();
        md.set('peerbroker-location', target.endpoint);
        md.set('peerbroker-location-node', 'target');
        md.set('peerbroker-reason', 'load');
        return { code: status.RESOURCE_EXHAUSTED, details: 'peerbroker: redirected to target', metadata: md };
      };
      const redirectUnary = (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(trailers(), null);
      const redirectStream = (call: NodeJS.EventEmitter) => call.emit('error', trailers());
      const bank = bankProto().bank;
      redirector = new grpc.Server();
      redirector.addService(bank.Banking.service, Object.fromEntries(Object.keys(bank.Banking.service).map((m) => [m, redirectUnary])));
      redirector.addService(bank.Securities.service, { GetQuote: redirectUnary, WatchQuotes: redirectStream, Trade: redirectStream });
      redirector.addService(brokerProto().peerbroker.v1.Broker.service, {
        Members: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
          const members = [{ nodeId: 'target', endpoint: target.endpoint, status: 'ONLINE', endpoints: [target.endpoint] }];
          setTimeout(() => cb(null, { nodeId: 'redirector', members }), membersDelayMs);
        },
        Status: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
      });
      const port = await new Promise<number>((resolve, reject) =>
        redirector.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
      );
      redirectorEndpoint = `127.0.0.1:${port}`;
    });

    afterAll(() => redirector?.forceShutdown());
    afterEach(() => (membersDelayMs = MEMBERS_DELAY_MS));

    it('never sends a cancelled unary call on to the next node', async () => {
      const runBefore = target.stats.run;
      const err = await callError(
        new Promise((resolve, reject) => {
          const call = bankClient([redirectorEndpoint]).Deposit({ accountId: 'late', amountCents: 1 }, (e, v) => (e ? reject(e) : resolve(v)));
          setTimeout(() => call.cancel(), MEMBERS_DELAY_MS / 4);
        }),
      );
      expect(err.code).toBe(status.CANCELLED);
      expect(err.details).toBe('Cancelled on client');
      await sleep(MEMBERS_DELAY_MS);
      expect(target.stats.run).toBe(runBefore);
    });

    it('never sends a call cancelled in the same tick as the member list arrives', async () => {
      const runBefore = target.stats.run;
      const client = bankClient([redirectorEndpoint]);
      const err = await callError(
        new Promise((resolve, reject) => {
          const call = client.Deposit({ accountId: 'same-tick', amountCents: 1 }, (e, v) => (e ? reject(e) : resolve(v)));
          // The application cancels when the member list arrives: the stub learns `target` then too.
          void client.peerbroker.members.refresh().then(() => call.cancel());
        }),
      );
      expect(err.code).toBe(status.CANCELLED);
      await sleep(MEMBERS_DELAY_MS);
      expect(target.stats.run).toBe(runBefore);
    });

    it('ends a call waiting to learn the members at its deadline, whatever the member list takes', async () => {
      membersDelayMs = 5_000;
      const runBefore = target.stats.run;
      const started = Date.now();
      const err = await callError(unary(bankClient([redirectorEndpoint]), 'Deposit', { accountId: 'slow-members', amountCents: 1 }, { timeoutMs: 300 }));
      const elapsed = Date.now() - started;
      expect(err.code).toBe(status.DEADLINE_EXCEEDED);
      expect(elapsed).toBeGreaterThanOrEqual(280);
      // Well before the member list's 5 s (a loose bound: this machine is shared).
      expect(elapsed).toBeLessThan(4_000);
      expect(target.stats.run).toBe(runBefore);
    });

    it('never sends a cancelled bidi call on to the next node', async () => {
      const runBefore = target.stats.run;
      const call = securitiesClient([redirectorEndpoint]).Trade() as Duplex;
      const result = outcome(call);
      call.write(order(0));
      call.end();
      await sleep(MEMBERS_DELAY_MS / 4);
      call.cancel();
      const { error, fills } = await result;
      expect(error?.code).toBe(status.CANCELLED);
      expect(fills).toEqual([]);
      await sleep(MEMBERS_DELAY_MS);
      expect(target.stats.run).toBe(runBefore);
    });
  });
});
