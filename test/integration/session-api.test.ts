import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bankProto } from '../../examples/bank';
import { Broker, sessionOf, type SessionEndReason, type SessionInfo } from '../../src';
import { createLogger } from '../../src/log';
import { bankClient, callError, plainBankClient, sleep, unary, waitFor } from '../helpers/brokers';
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

describe('the session API for handlers (a real broker)', () => {
  const nats = natsForSuite();
  const seen: Record<string, SessionInfo | undefined> = {};
  const ended: Array<{ id: string; why: SessionEndReason }> = [];
  let n1: Broker;

  beforeAll(async () => {
    n1 = new Broker({
      nodeId: 'n1',
      listen: '127.0.0.1:0',
      nats: [nats().url],
      cluster: 'session-api',
      periodMs: 100,
      logger: createLogger({ level: 'error' }),
      // Before the .proto's rules: Abort ends nothing here, and sessions idle out after 300 ms.
      sessions: [{ enter: 'bank.Banking/BeginTransaction', within: 'bank.Banking/*', exit: 'bank.Banking/Commit', idleMs: 300 }],
    });
    n1.addService(bankProto().bank.Banking.service, bankingApp('n1', seen));
    n1.onSessionEnd((s, why) => ended.push({ id: s.id, why }));
    await n1.start();
  });

  afterAll(async () => {
    await n1?.stop();
  });

  it('gives the enter handler the token it issues before it answers, and within and exit handlers their session', async () => {
    const client = bankClient([n1.endpoint]);
    const before = Date.now();
    const tx = await unary<{ transactionId: string }>(client, 'BeginTransaction', { accountId: 'a1' });
    const token = client.peerbroker.session.token;
    expect(token).toMatch(/^n1\./);
    expect(tx.value.transactionId).toBe(token);
    expect(seen.enter).toMatchObject({ id: token, owner: 'n1', enter: '/bank.Banking/BeginTransaction', idleMs: 300 });
    expect(seen.enter!.openedAt).toBeGreaterThanOrEqual(before);
    expect(seen.enter!.expiresAt).toBe(seen.enter!.openedAt + 300);

    await unary(client, 'Deposit', { accountId: 'a1', amountCents: 5 });
    expect(seen.deposit).toMatchObject({ id: token, owner: 'n1', enter: '/bank.Banking/BeginTransaction' });
    expect(seen.deposit!.expiresAt).toBeGreaterThan(Date.now());

    await unary(client, 'Commit', { transactionId: token });
    expect(seen.commit?.id).toBe(token);
    expect(ended).toContainEqual({ id: token, why: 'exit' });
    expect(client.peerbroker.session.token).toBe('');
  });

  it('gives undefined to a call outside a session', async () => {
    await unary(plainBankClient(n1.endpoint), 'GetBalance', { accountId: 'a1' });
    expect(seen.balance).toBeUndefined();
  });

  it('starts no session when the enter handler fails, though it saw the token it would have issued', async () => {
    const client = bankClient([n1.endpoint]);
    const count = ended.length;
    await callError(unary(client, 'BeginTransaction', { accountId: 'fail' }));
    expect(seen.enter?.id).toMatch(/^n1\./);
    expect(client.peerbroker.session.token).toBe('');
    await sleep(500);
    expect(ended.length).toBe(count);
  });

  it('tells the application when a session expires', async () => {
    const client = bankClient([n1.endpoint]);
    await unary(client, 'BeginTransaction', { accountId: 'a2' });
    const token = client.peerbroker.session.token;
    const opened = Date.now();
    await waitFor(() => ended.find((e) => e.id === token), 3_000, 10, 'the session to expire');
    expect(ended.find((e) => e.id === token)?.why).toBe('expired');
    expect(Date.now() - opened).toBeGreaterThanOrEqual(300);
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
