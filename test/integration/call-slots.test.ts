import * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { bankImplementations, bankProto } from '../../examples/bank';
import type { Broker } from '../../src';
import { bankClient, callError, cleanupBrokers, holdSlots, plainBankClient, startBroker, unary, waitFor, type SlotHold, type TestBrokerOptions } from '../helpers/brokers';

// One broker running alone (no NATS): what its slots, queue and session table do
// when calls are cancelled, time out, or pile up on a busy owner.

/** A broker hosting the bank example with `GetBalance` replaced; stopped after the suite. */
function brokerWith(options: Omit<TestBrokerOptions, 'nodeId' | 'host'>, getBalance: grpc.handleUnaryCall<unknown, unknown>): Promise<Broker> {
  return startBroker({
    nodeId: 'n1',
    ...options,
    host: (broker) => {
      const proto = bankProto();
      const impl = bankImplementations('n1', 1);
      broker.addService(proto.bank.Banking.service, { ...impl.banking, GetBalance: getBalance } as unknown as grpc.UntypedServiceImplementation);
      broker.addService(proto.bank.Securities.service, impl.securities as unknown as grpc.UntypedServiceImplementation);
    },
  });
}

afterAll(async () => {
  await cleanupBrokers();
});

describe('slots of cancelled calls', () => {
  it('keeps the slot of a cancelled call until its handler ends, so no more handlers run than capacity', async () => {
    let runningNow = 0;
    let mostAtOnce = 0;
    let ran = 0;
    // A handler that ignores cancellation: it runs its 1.5 s whatever the client does.
    const broker = await brokerWith({ capacity: 2 }, (_call, cb) => {
      ran++;
      mostAtOnce = Math.max(mostAtOnce, ++runningNow);
      setTimeout(() => {
        runningNow--;
        cb(null, { accountId: 'x', balanceCents: 0, servedBy: 'n1' });
      }, 1_500);
    });
    const client = plainBankClient(broker.endpoint);
    // Connected first, so that every call reaches the broker before it is cancelled.
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 5_000, (err) => (err ? reject(err) : resolve())));
    const calls = Array.from({ length: 8 }, (_, i) => {
      let call!: grpc.ClientUnaryCall;
      const ended = new Promise<grpc.ServiceError | null>((resolve) => {
        call = client.GetBalance({ accountId: `c${i}` }, (err) => resolve(err));
      });
      return { call, ended };
    });
    // Two handlers run, six calls wait in the queue.
    await waitFor(() => ran === 2 && broker.members()[0].queued === 6, 5_000, 10, 'two handlers to start and six calls to wait');
    for (const c of calls) c.call.cancel();
    // The waiting calls leave the queue at once; the two handlers still run.
    await waitFor(() => broker.members()[0].queued === 0, 1_000, 10, 'the cancelled calls to leave the queue');
    // What `peerbroker status` shows: both slots taken, full load.
    const self = broker.members()[0];
    expect(self.inFlight).toBe(2);
    expect(self.load).toBe(1);
    for (const c of calls) expect((await c.ended)?.code).toBe(status.CANCELLED);
    await waitFor(() => runningNow === 0 && broker.load() === 0, 5_000, 20, 'the handlers to end');
    expect(mostAtOnce).toBe(2);
    // The six calls that waited were cancelled before a slot freed: they never ran.
    expect(ran).toBe(2);
  });

  it('drops calls whose deadline passes while they wait: they never run and leave the queue', async () => {
    let release!: () => void;
    const handled: string[] = [];
    const broker = await brokerWith({ capacity: 1, maxQueue: 100 }, (call, cb) => {
      const id = (call.request as { accountId: string }).accountId;
      handled.push(id);
      const answer = () => cb(null, { accountId: id, balanceCents: 0, servedBy: 'n1' });
      if (id === 'hold') release = answer;
      else answer();
    });
    const client = plainBankClient(broker.endpoint);
    const hold = unary(client, 'GetBalance', { accountId: 'hold' });
    await waitFor(() => handled.length === 1, 5_000, 10, 'the holding call to run');
    const big = 'x'.repeat(64 * 1024);
    const expired = await Promise.all(
      Array.from({ length: 50 }, (_, i) => callError(unary(client, 'GetBalance', { accountId: `late${i}-${big}` }, { timeoutMs: 40 }))),
    );
    expect(new Set(expired.map((e) => e.code))).toEqual(new Set([status.DEADLINE_EXCEEDED]));
    await waitFor(() => broker.members()[0].queued === 0, 5_000, 20, 'the queue to be empty');
    release();
    await hold;
    expect((await unary(client, 'GetBalance', { accountId: 'next' })).servedBy).toBe('n1');
    expect(handled).toEqual(['hold', 'next']);
  });
});

describe('a call pinned to a busy owner (sessions from bank.proto)', () => {
  let holds: SlotHold[] = [];
  afterEach(() => {
    for (const h of holds) h.release();
    holds = [];
  });

  it('is refused with RESOURCE_EXHAUSTED naming the session, without a location, once the queue is full', async () => {
    const broker = await startBroker({ nodeId: 'n1', capacity: 1, maxQueue: 1 });
    const client = bankClient([broker.endpoint]);
    await unary(client, 'BeginTransaction', { accountId: 'a1' });
    const token = client.peerbroker.session.token!;
    holds.push(holdSlots(broker.endpoint, 1));
    await waitFor(() => broker.load() === 1, 5_000, 10, 'the slot to be held');
    const refused: grpc.ServiceError[] = [];
    const served: string[] = [];
    const deposits = [1, 2, 3].map((i) =>
      unary(client, 'Deposit', { accountId: `a${i}`, amountCents: 1 }, { timeoutMs: 10_000 }).then(
        (r) => void served.push(r.servedBy!),
        (err: grpc.ServiceError) => void refused.push(err),
      ),
    );
    // One waits for the slot; the queue (1) has no room for the other two, which cannot move.
    await waitFor(() => refused.length === 2, 5_000, 10, 'two deposits to be refused');
    for (const err of refused) {
      expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(err.details).toContain(`session '${token}'`);
      expect(err.metadata.get('peerbroker-location')).toEqual([]);
    }
    expect(served).toEqual([]);
    holds.pop()!.release();
    await Promise.all(deposits);
    expect(served).toEqual(['n1']);
  });
});

describe('the cap on live sessions (maxSessions)', () => {
  it('refuses an enter call past the cap with RESOURCE_EXHAUSTED; the sessions already open keep working', async () => {
    const broker = await startBroker({ nodeId: 'n1', maxSessions: 2 });
    const clients = [0, 1, 2].map(() => bankClient([broker.endpoint]));
    await unary(clients[0], 'BeginTransaction', { accountId: 'a0' });
    await unary(clients[1], 'BeginTransaction', { accountId: 'a1' });
    const err = await callError(unary(clients[2], 'BeginTransaction', { accountId: 'a2' }));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toContain('2 live sessions (maxSessions)');
    expect(clients[2].peerbroker.session.token).toBe('');
    for (const c of clients.slice(0, 2)) expect((await unary(c, 'Deposit', { accountId: 'a', amountCents: 1 })).servedBy).toBe('n1');
    // Ending one makes room for a new one.
    await unary(clients[0], 'Commit', { transactionId: 'x' });
    await unary(clients[2], 'BeginTransaction', { accountId: 'a2' });
    expect(clients[2].peerbroker.session.token).toMatch(/^n1\./);
  });
});
