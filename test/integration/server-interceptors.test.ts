import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src';
import { bankClient, callError, cleanupBrokers, followMetadata, plainBankClient, securitiesClient, startBroker, startBrokerGroup, unary } from '../helpers/brokers';
import { natsForSuite } from '../helpers/suite';

/** What a server interceptor saw of a call: its path and the status it ended with. */
interface Seen {
  path: string;
  code?: number;
  location?: string;
}

/** Records every call and its status: what a logging interceptor does. */
function recorder(seen: Seen[]): grpc.ServerInterceptor {
  return (method, call) => {
    const entry: Seen = { path: method.path };
    seen.push(entry);
    return new grpc.ServerInterceptingCall(call, {
      sendStatus: (st, next) => {
        entry.code = st.code;
        entry.location = st.metadata?.get('peerbroker-location')[0] as string | undefined;
        next(st);
      },
    });
  };
}

/**
 * Refuses calls without `authorization: Bearer good`, as an auth interceptor does; lets through
 * the broker's own services (stubs call Members; health probes carry no token).
 */
const auth: grpc.ServerInterceptor = (method, call) => {
  const open = method.path.startsWith('/peerbroker.') || method.path.startsWith('/grpc.health.');
  const ic: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
    start: (next) =>
      next({
        onReceiveMetadata: (md, mdNext) => {
          if (open || md.get('authorization')[0] === 'Bearer good') return mdNext(md);
          ic.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: 'no valid token' });
        },
      }),
  });
  return ic;
};

const withToken = () => {
  const md = new grpc.Metadata();
  md.set('authorization', 'Bearer good');
  return md;
};

describe('server options: interceptors and message size (in-process brokers)', () => {
  const nats = natsForSuite();
  const seen: Seen[] = [];
  let n1: Broker;
  let n2: Broker;

  beforeAll(async () => {
    // n1 hosts Securities only: every Banking call that reaches it is redirected to n2.
    [n1, n2] = await startBrokerGroup(
      ['n1', 'n2'],
      { nats: [nats().url], cluster: 'interceptors', periodMs: 100 },
      {
        n1: { services: ['bank.Securities'], serverOptions: { interceptors: [recorder(seen), auth] }, maxReceiveMessageBytes: 1024 },
        n2: { serverOptions: { interceptors: [auth] } },
      },
    );
  });

  it('runs server interceptors on every call, also one the gate redirects; the gate still decides before any handler', async () => {
    const client = bankClient([n1.endpoint]);
    const before = n1.stats;
    const r = await unary(client, 'GetBalance', { accountId: 'a1' }, { metadata: withToken() });
    expect(r.servedBy).toBe('n2');
    // n1's interceptor saw the call and the redirect it was answered with; n1 ran nothing.
    const call = seen.find((s) => s.path === '/bank.Banking/GetBalance');
    expect(call).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, location: n2.endpoint });
    expect(n1.stats.run).toBe(before.run);
    expect(n1.stats.redirected).toBe(before.redirected + 1);
  });

  it('lets an interceptor refuse a call before the gate: no handler runs, nothing is counted or redirected', async () => {
    const before = n1.stats;
    const err = await callError(unary(bankClient([n1.endpoint]), 'GetBalance', { accountId: 'a1' }));
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(n1.stats).toEqual(before);
    // A plain client of a hosted service: refused the same way, with a token served.
    const plain = plainBankClient(n2.endpoint);
    expect((await callError(unary(plain, 'GetBalance', { accountId: 'a1' }))).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await unary(plain, 'GetBalance', { accountId: 'a1' }, { metadata: withToken() })).servedBy).toBe('n2');
  });

  it('refuses a request larger than maxReceiveMessageBytes with RESOURCE_EXHAUSTED: the gate and the handler never see it', async () => {
    const before = n1.stats;
    const client = securitiesClient([n1.endpoint]);
    const err = await callError(unary(client, 'GetQuote', { symbol: 'x'.repeat(2_000) }, { metadata: withToken() }));
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err.details).toMatch(/larger than max \(\d+ vs 1024\)/);
    expect(n1.stats).toEqual(before);
    expect((await unary(client, 'GetQuote', { symbol: 'ACME' }, { metadata: withToken() })).servedBy).toBe('n1');
  });
});

describe('server interceptors that change the response headers (an in-process broker alone)', () => {
  afterAll(() => cleanupBrokers());

  it('gives each call its own headers: what an interceptor adds to one call is not sent with the next', async () => {
    // Stamps every call's response headers, as a tracing or version interceptor does.
    const stamp: grpc.ServerInterceptor = (_method, call) =>
      new grpc.ServerInterceptingCall(call, {
        sendMetadata: (md, next) => {
          md.add('x-stamp', 'one');
          next(md);
        },
      });
    const broker = await startBroker({ nodeId: 'alone', cluster: 'interceptor-headers', serverOptions: { interceptors: [stamp] } });
    const client = plainBankClient(broker.endpoint);
    for (let i = 0; i < 3; i++) {
      // A following client gets the node's accepted-call headers (peerbroker-node).
      const r = await unary(client, 'GetBalance', { accountId: `h${i}` }, { metadata: followMetadata() });
      expect(r.metadata.get('peerbroker-node')).toEqual(['alone']);
      expect(r.metadata.get('x-stamp')).toEqual(['one']);
    }
  });
});
