import * as grpc from '@grpc/grpc-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { bankProto } from '../../examples/bank';
import { sessionOf, type Broker, type SessionEndReason, type SessionInfo } from '../../src';
import { bankClient, callError, plainBankClient, startBroker, unary, waitFor } from '../helpers/brokers';
import { natsForSuite } from '../helpers/suite';

type Handler = (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => void;

/**
 * The Banking service of an application that keeps state per session: it learns the token in
 * the enter handler (and uses it as its transaction id), sees the session in the others, and
 * is told when a session ends.
 */
function bankingApp(nodeId: string, seen: Record<string, SessionInfo | undefined>): grpc.UntypedServiceImplementation {
  const def = bankProto().bank.Banking.service;
  const impl: Record<string, Handler> = {};
  for (const name of Object.keys(def)) impl[name] = (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED, details: 'not in this test' });
  impl.BeginTransaction = (call, cb) => {
    const s = sessionOf(call);
    seen.enter = s;
    if (call.request.accountId === 'fail') return cb({ code: grpc.status.FAILED_PRECONDITION, details: 'no such account' });
    cb(null, { transactionId: s?.id ?? '', accountId: call.request.accountId });
  };
  impl.Deposit = (call, cb) => {
    seen.deposit = sessionOf(call);
    cb(null, { accountId: call.request.accountId, balanceCents: 1, servedBy: nodeId });
  };
  impl.GetBalance = (call, cb) => {
    seen.balance = sessionOf(call);
    cb(null, { accountId: call.request.accountId, balanceCents: 1, servedBy: nodeId });
  };
  impl.Commit = (call, cb) => {
    seen.commit = sessionOf(call);
    cb(null, { transactionId: call.request.transactionId, committed: true });
  };
  return impl as grpc.UntypedServiceImplementation;
}

/** A broker of `cluster` hosting `bankingApp`, whose sessions idle out after `idleMs`, noting in `ended` those that end. */
function sessionBroker(nats: string, cluster: string, idleMs: number, seen: Record<string, SessionInfo | undefined>, ended: Array<{ id: string; why: SessionEndReason }>): Promise<Broker> {
  return startBroker({
    nodeId: 'n1',
    nats: [nats],
    cluster,
    periodMs: 100,
    // Before the .proto's rules: Abort ends nothing here.
    sessions: [{ enter: 'bank.Banking/BeginTransaction', within: 'bank.Banking/*', exit: 'bank.Banking/Commit', idleMs }],
    host: (broker) => {
      broker.addService(bankProto().bank.Banking.service, bankingApp('n1', seen));
      broker.onSessionEnd((s, why) => ended.push({ id: s.id, why }));
    },
  });
}

const nats = natsForSuite();

describe('the session API for handlers (a real broker)', () => {
  // Long enough that no session of these tests idles out while it runs.
  const IDLE_MS = 2_000;
  const seen: Record<string, SessionInfo | undefined> = {};
  const ended: Array<{ id: string; why: SessionEndReason }> = [];
  let n1: Broker;

  beforeAll(async () => {
    n1 = await sessionBroker(nats().url, 'session-api', IDLE_MS, seen, ended);
  });

  it('gives the enter handler the token it issues before it answers, and within and exit handlers their session', async () => {
    const client = bankClient([n1.endpoint]);
    const before = Date.now();
    const tx = await unary<{ transactionId: string }>(client, 'BeginTransaction', { accountId: 'a1' });
    const token = client.peerbroker.session.token;
    expect(token).toMatch(/^n1\./);
    expect(tx.value.transactionId).toBe(token);
    expect(seen.enter).toMatchObject({ id: token, owner: 'n1', enter: '/bank.Banking/BeginTransaction', idleMs: IDLE_MS });
    expect(seen.enter!.openedAt).toBeGreaterThanOrEqual(before);
    expect(seen.enter!.expiresAt).toBe(seen.enter!.openedAt + IDLE_MS);

    const beforeDeposit = Date.now();
    await unary(client, 'Deposit', { accountId: 'a1', amountCents: 5 });
    expect(seen.deposit).toMatchObject({ id: token, owner: 'n1', enter: '/bank.Banking/BeginTransaction' });
    // The deposit restarted the idle time.
    expect(seen.deposit!.expiresAt).toBeGreaterThanOrEqual(beforeDeposit + IDLE_MS);

    await unary(client, 'Commit', { transactionId: token });
    expect(seen.commit?.id).toBe(token);
    expect(ended).toContainEqual({ id: token, why: 'exit' });
    expect(client.peerbroker.session.token).toBe('');
  });

  it('gives undefined to a call outside a session', async () => {
    await unary(plainBankClient(n1.endpoint), 'GetBalance', { accountId: 'a1' });
    expect(seen.balance).toBeUndefined();
  });

  it('ends the sessions still live when the node stops, as stopped', async () => {
    const client = bankClient([n1.endpoint]);
    await unary(client, 'BeginTransaction', { accountId: 'a3' });
    const token = client.peerbroker.session.token;
    client.close();
    await n1.stop();
    expect(ended).toContainEqual({ id: token, why: 'stopped' });
  });
});

describe('sessions that idle out (a real broker, idleMs 300)', () => {
  const IDLE_MS = 300;
  const seen: Record<string, SessionInfo | undefined> = {};
  const ended: Array<{ id: string; why: SessionEndReason }> = [];
  let n1: Broker;

  beforeAll(async () => {
    n1 = await sessionBroker(nats().url, 'session-idle', IDLE_MS, seen, ended);
  });

  it('tells the application when a session expires', async () => {
    const client = bankClient([n1.endpoint]);
    const before = Date.now();
    await unary(client, 'BeginTransaction', { accountId: 'a2' });
    const token = client.peerbroker.session.token;
    await waitFor(() => ended.find((e) => e.id === token), 3_000, 10, 'the session to expire');
    expect(ended.find((e) => e.id === token)?.why).toBe('expired');
    expect(Date.now() - before).toBeGreaterThanOrEqual(IDLE_MS);
  });

  it('starts no session when the enter handler fails, though it saw the token it would have issued', async () => {
    const client = bankClient([n1.endpoint]);
    await callError(unary(client, 'BeginTransaction', { accountId: 'fail' }));
    const refused = seen.enter?.id;
    expect(refused).toMatch(/^n1\./);
    expect(client.peerbroker.session.token).toBe('');
    // A session opened after it expires after it: once that one has, the refused one would have too.
    const later = bankClient([n1.endpoint]);
    await unary(later, 'BeginTransaction', { accountId: 'a4' });
    const token = later.peerbroker.session.token;
    await waitFor(() => ended.find((e) => e.id === token), 3_000, 10, 'the later session to expire');
    expect(ended.map((e) => e.id)).not.toContain(refused);
  });
});
