import * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src';
import {
  bankClient,
  callError,
  holdSlots,
  plainBankClient,
  plainSecuritiesClient,
  securitiesClient,
  serverStream,
  sleep,
  startBroker,
  startBrokerGroup,
  startBrokerProcesses,
  unary,
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

/** Metadata carrying a session token, as the stub sends it; `follow` also announces following. */
function sessionMetadata(token: string, follow = true): grpc.Metadata {
  const md = new grpc.Metadata();
  if (follow) md.set('peerbroker-follow', '1');
  md.set('peerbroker-session', token);
  return md;
}

/** Runs client-streaming DepositBatch with `amounts` through `client`; resolves with the summary. */
function depositBatch(client: grpc.Client, accountId: string, amounts: number[]) {
  return new Promise<{ count: number; totalCents: string; servedBy: string }>((resolve, reject) => {
    const call = (client as unknown as { DepositBatch: (cb: grpc.requestCallback<unknown>) => grpc.ClientWritableStream<unknown> }).DepositBatch(
      (err, value) => (err ? reject(err) : resolve(value as { count: number; totalCents: string; servedBy: string })),
    );
    for (const amountCents of amounts) call.write({ accountId, amountCents });
    call.end();
  });
}

describe('sessions', () => {
  const nats = natsForSuite();

  describe('declared in bank.proto (two in-process brokers)', () => {
    let n1: Broker;
    let n2: Broker;
    let holds: SlotHold[] = [];

    beforeAll(async () => {
      [n1, n2] = await startBrokerGroup(['n1', 'n2'], {
        nats: [nats().url],
        cluster: 'sessions',
        capacity: CAPACITY,
        threshold: 0.5,
        margin: 0.2,
        periodMs: PERIOD_MS,
        workMs: 5,
        // Reported load only: every redirect decision is the same, whatever was sent before.
        peerChoice: 'least-loaded',
      });
    });

    afterEach(async () => {
      for (const h of holds) h.release();
      holds = [];
      for (const b of [n1, n2]) await waitForLoad(n2, b, 0);
    });

    it('keeps every call of a session on its owner under heavy load while other calls are redirected away', async () => {
      const client = bankClient([n1.endpoint]);
      const begin = await unary<{ transactionId: string }>(client, 'BeginTransaction', { accountId: 'acct-1' });
      expect(begin.servedBy).toBe('n1');
      const token = client.peerbroker.session.token;
      expect(token).toMatch(/^n1\.[A-Za-z0-9_-]{8,}$/);
      expect(begin.metadata.get('peerbroker-session')).toEqual([token]);

      holds.push(holdSlots(n1.endpoint, 3));
      await waitForLoad(n2, n1, 0.75);
      await waitForLoad(n1, n2, 0);

      // A client sharing the channels, outside the session.
      const other = client.peerbroker.withSession();
      expect(other.peerbroker.session.token).toBe('');
      expect(other.peerbroker.pool).toBe(client.peerbroker.pool);

      const redirectedBefore = n1.stats.redirected;
      const inSession: string[] = [];
      const outside: string[] = [];
      for (let i = 0; i < 8; i++) {
        inSession.push((await unary(client, i % 2 ? 'Deposit' : 'GetBalance', { accountId: 'acct-1', amountCents: 100 })).servedBy!);
        outside.push((await unary(other, 'GetBalance', { accountId: 'acct-1' })).servedBy!);
      }
      // Server-streaming and client-streaming calls of the session too.
      const statements = await serverStream(client, 'StreamStatements', { accountId: 'acct-1', count: 4 });
      inSession.push(...statements.servedBy);
      inSession.push((await depositBatch(client, 'acct-1', [1, 2, 3])).servedBy);
      expect(inSession).toEqual(Array(10).fill('n1'));
      // The others are balanced: the first is redirected, and its advice sends most of the
      // next ones straight to the idle n2 (n1 takes its share while it has a free slot).
      expect(n1.stats.redirected - redirectedBefore).toBeGreaterThanOrEqual(1);
      expect(outside.filter((s) => s === 'n2').length).toBeGreaterThanOrEqual(5);
      expect(client.peerbroker.session.token).toBe(token);

      // The exit call runs on the owner, says the session is over, and the stub forgets the token.
      const commit = await unary<{ committed: boolean }>(client, 'Commit', { transactionId: begin.value.transactionId });
      expect(commit.servedBy).toBe('n1');
      expect(commit.value.committed).toBe(true);
      expect(commit.metadata.get('peerbroker-session')).toEqual(['']);
      expect(client.peerbroker.session.token).toBe('');
      // Balanced again: the next calls are no longer pinned to the loaded owner.
      const after: string[] = [];
      for (let i = 0; i < 6; i++) after.push((await unary(client, 'GetBalance', { accountId: 'acct-1' })).servedBy!);
      expect(after).toContain('n2');
    });

    it('redirects a session call that reaches another node to the owner, with reason session', async () => {
      const owner = bankClient([n1.endpoint]);
      await unary(owner, 'BeginTransaction', { accountId: 'acct-2' });
      const token = owner.peerbroker.session.token;
      expect(token.startsWith('n1.')).toBe(true);

      const raw = await callError(unary(plainBankClient(n2.endpoint), 'GetBalance', { accountId: 'acct-2' }, { metadata: sessionMetadata(token) }));
      expect(raw.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(raw.metadata.get('peerbroker-location')).toEqual([n1.endpoint]);
      expect(raw.metadata.get('peerbroker-location-node')).toEqual(['n1']);
      expect(raw.metadata.get('peerbroker-reason')).toEqual(['session']);

      // A stub that enters through n2 with the token follows it to the owner.
      const elsewhere = bankClient([n2.endpoint]);
      elsewhere.peerbroker.session.token = token;
      expect((await unary(elsewhere, 'Deposit', { accountId: 'acct-2', amountCents: 5 })).servedBy).toBe('n1');
      expect(elsewhere.peerbroker.stats.redirectsFollowed).toBe(1);

      // A plain client cannot be redirected: it is told where the session lives.
      const plain = await callError(
        unary(plainBankClient(n2.endpoint), 'GetBalance', { accountId: 'acct-2' }, { metadata: sessionMetadata(token, false) }),
      );
      expect(plain.code).toBe(status.FAILED_PRECONDITION);
      expect(plain.details).toContain("belongs to node 'n1'");
    });

    it("forwards a plain client's session call to the owner when forwardLegacy is on", async () => {
      // A plain client gets the token in the enter call's headers and can send it itself.
      const begin = await unary(plainBankClient(n1.endpoint), 'BeginTransaction', { accountId: 'acct-p' });
      const token = String(begin.metadata.get('peerbroker-session')[0]);
      expect(token.startsWith('n1.')).toBe(true);
      n2.configure({ forwardLegacy: true });
      try {
        const r = await unary(plainBankClient(n2.endpoint), 'Deposit', { accountId: 'acct-p', amountCents: 7 }, { metadata: sessionMetadata(token, false) });
        expect(r.servedBy).toBe('n1');
      } finally {
        n2.configure({ forwardLegacy: false });
      }
    });

    it('gives each client from withSession() a session of its own, on the same channels', async () => {
      const root = bankClient([n1.endpoint]);
      const a = root.peerbroker.withSession();
      const b = root.peerbroker.withSession();
      const ta = await unary<{ transactionId: string }>(a, 'BeginTransaction', { accountId: 'acct-a' });
      await unary(b, 'BeginTransaction', { accountId: 'acct-b' });
      expect(a.peerbroker.session.token).not.toBe('');
      expect(b.peerbroker.session.token).not.toBe('');
      expect(a.peerbroker.session.token).not.toBe(b.peerbroker.session.token);
      expect(root.peerbroker.session.token).toBe('');
      await unary(a, 'Commit', { transactionId: ta.value.transactionId });
      expect(a.peerbroker.session.token).toBe('');
      expect(b.peerbroker.session.token.startsWith('n1.')).toBe(true);
      expect(root.peerbroker.pool.endpoints()).toEqual([n1.endpoint]);
    });

    it('fails a call with the token of an ended session with FAILED_PRECONDITION: unknown or expired', async () => {
      const client = bankClient([n1.endpoint]);
      const begin = await unary<{ transactionId: string }>(client, 'BeginTransaction', { accountId: 'acct-3' });
      const token = client.peerbroker.session.token;
      await unary(client, 'Abort', { transactionId: begin.value.transactionId });
      expect(client.peerbroker.session.token).toBe('');
      const err = await callError(unary(plainBankClient(n1.endpoint), 'GetBalance', { accountId: 'acct-3' }, { metadata: sessionMetadata(token) }));
      expect(err.code).toBe(status.FAILED_PRECONDITION);
      expect(err.details).toBe(`peerbroker: session '${token}' is unknown or expired on node 'n1'`);
    });

    it('rejects a malformed session token with INVALID_ARGUMENT before any handler runs', async () => {
      const runBefore = n1.stats.run;
      for (const bad of ['no-dot', 'n1.short', 'n1.has space in it', `n1.${'x'.repeat(200)}`, '.abcdefghij']) {
        const err = await callError(unary(plainBankClient(n1.endpoint), 'GetBalance', { accountId: 'x' }, { metadata: sessionMetadata(bad) }));
        expect(err.code, bad).toBe(status.INVALID_ARGUMENT);
        expect(err.details).toContain("malformed 'peerbroker-session' token");
      }
      const stub = bankClient([n1.endpoint]);
      stub.peerbroker.session.token = 'garbage';
      expect((await callError(unary(stub, 'GetBalance', { accountId: 'x' }))).code).toBe(status.INVALID_ARGUMENT);
      expect(n1.stats.run).toBe(runBefore);
    });
  });

  describe('from the sessions option, with a wildcard and a short idle time', () => {
    const IDLE_MS = 600;
    let node: Broker;

    beforeAll(async () => {
      node = await startBroker({
        nodeId: 'idle1',
        nats: [nats().url],
        cluster: 'sessions-idle',
        periodMs: PERIOD_MS,
        workMs: 1,
        sessions: [
          { enter: 'bank.Banking/BeginTransaction', within: 'bank.Banking/*', exit: ['bank.Banking/Commit', 'bank.Banking/Abort'], idleMs: IDLE_MS },
        ],
      });
    });

    it('keeps a session alive while it is used, and expires it after the idle time', async () => {
      const client = bankClient([node.endpoint]);
      await unary(client, 'BeginTransaction', { accountId: 'i1' });
      const token = client.peerbroker.session.token;
      expect(token.startsWith('idle1.')).toBe(true);
      // Used every IDLE_MS / 4 for the idle time and more: never expires.
      for (let i = 0; i < 6; i++) {
        await sleep(IDLE_MS / 4);
        await unary(client, 'Deposit', { accountId: 'i1', amountCents: 1 });
      }
      await sleep(IDLE_MS + 300);
      const err = await callError(unary(client, 'GetBalance', { accountId: 'i1' }));
      expect(err.code).toBe(status.FAILED_PRECONDITION);
      expect(err.details).toBe(`peerbroker: session '${token}' is unknown or expired on node 'idle1'`);
      // A method outside the rule ignores the token.
      const quote = await unary(plainSecuritiesClient(node.endpoint), 'GetQuote', { symbol: 'Q' }, { metadata: sessionMetadata(token) });
      expect(quote.servedBy).toBe('idle1');
      // A new enter call starts a new session on the same client.
      await unary(client, 'BeginTransaction', { accountId: 'i1' });
      expect(client.peerbroker.session.token).not.toBe(token);
      expect((await unary(client, 'GetBalance', { accountId: 'i1' })).servedBy).toBe('idle1');
    });
  });

  describe('entered or ended by streaming calls', () => {
    let node: Broker;

    beforeAll(async () => {
      node = await startBroker({
        nodeId: 'st1',
        nats: [nats().url],
        cluster: 'sessions-streaming',
        periodMs: PERIOD_MS,
        workMs: 1,
        sessions: [
          // Ended by a client-streaming call.
          { enter: 'bank.Banking/OpenAccount', within: 'bank.Banking/GetBalance', exit: 'bank.Banking/DepositBatch' },
          // Entered by a bidi call, ended by a server-streaming one.
          { enter: 'bank.Securities/Trade', within: 'bank.Securities/GetQuote', exit: 'bank.Securities/WatchQuotes' },
        ],
      });
    });

    it('ends a session with a client-streaming exit call through the stub', async () => {
      const client = bankClient([node.endpoint]);
      await unary(client, 'OpenAccount', { owner: 'o', initialCents: 0 });
      const token = client.peerbroker.session.token;
      expect(token.startsWith('st1.')).toBe(true);
      expect((await unary(client, 'GetBalance', { accountId: 'x' })).servedBy).toBe('st1');
      const summary = await depositBatch(client, 'x', [5, 6]);
      expect(summary).toMatchObject({ count: 2, totalCents: '11', servedBy: 'st1' });
      expect(client.peerbroker.session.token).toBe('');
      const err = await callError(unary(plainBankClient(node.endpoint), 'GetBalance', { accountId: 'x' }, { metadata: sessionMetadata(token) }));
      expect(err.details).toContain('unknown or expired');
    });

    it('starts a session with a bidi call and ends it with a server-streaming call', async () => {
      const client = securitiesClient([node.endpoint]);
      const trade = client.Trade();
      const headers = new Promise<grpc.Metadata>((resolve) => trade.once('metadata', resolve));
      const ended = new Promise((resolve, reject) => {
        trade.on('data', () => {});
        trade.on('error', reject);
        trade.on('end', resolve);
      });
      trade.write({ orderId: 'o1', symbol: 'ACME', quantity: 1 });
      trade.end();
      const token = (await headers).get('peerbroker-session')[0];
      await ended;
      expect(token).toMatch(/^st1\./);
      expect(client.peerbroker.session.token).toBe(token);
      expect((await unary(client, 'GetQuote', { symbol: 'ACME' })).servedBy).toBe('st1');
      const quotes = await serverStream(client, 'WatchQuotes', { symbols: ['ACME'], count: 2 });
      expect(quotes.metadata.get('peerbroker-session')).toEqual(['']);
      expect(client.peerbroker.session.token).toBe('');
    });
  });

  describe('when the owner crashes (two broker processes)', () => {
    let p1: BrokerProcess;
    let p2: BrokerProcess;

    beforeAll(async () => {
      [p1, p2] = await startBrokerProcesses(['p1', 'p2'], {
        nats: [nats().url],
        cluster: 'sessions-crash',
        capacity: CAPACITY,
        // Short, so the crashed owner is off-line after 3 × 200 ms.
        periodMs: 200,
        env: { BANK_WORK_MS: '1' },
      });
    });

    afterAll(async () => {
      await Promise.all([p1, p2].map((b) => b?.kill9()));
    });

    it('fails a call of the session with FAILED_PRECONDITION naming the lost node, and a new session starts elsewhere', async () => {
      const first = bankClient([p1.endpoint]);
      await unary(first, 'BeginTransaction', { accountId: 'c1' });
      const token = first.peerbroker.session.token;
      expect(token.startsWith('p1.')).toBe(true);

      await p1.kill9();
      await waitForMembers(p2.endpoint, { p1: 'OFFLINE', p2: 'ONLINE' });

      const client = bankClient([p2.endpoint]);
      client.peerbroker.session.token = token;
      const err = await callError(unary(client, 'Deposit', { accountId: 'c1', amountCents: 10 }));
      expect(err.code).toBe(status.FAILED_PRECONDITION);
      expect(err.details).toBe(
        "peerbroker: session owner 'p1' is off-line: the session's state was on that node and is lost; start a new session",
      );
      // The same stub can begin again: the enter call is balanced, the new owner is p2.
      await unary(client, 'BeginTransaction', { accountId: 'c1' });
      expect(client.peerbroker.session.token.startsWith('p2.')).toBe(true);
      expect((await unary(client, 'Deposit', { accountId: 'c1', amountCents: 10 })).servedBy).toBe('p2');
    });
  });
});
