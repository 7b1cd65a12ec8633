import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTO_DIR, PROTO_LOADER_OPTIONS, createClient, type Broker } from '../../src';
import { bankClient, closeAllClients, securitiesClient, serverStream, startBroker, unary } from '../helpers/brokers';
import { natsForSuite } from '../helpers/suite';

type Grpc = typeof grpc;
type Fill = { orderId: string; servedBy: string };
type AnyClient = Record<string, (...args: unknown[]) => unknown>;

const bankDefinition = () => protoLoader.loadSync('examples/bank.proto', { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_DIR] });

/**
 * A second, separate copy of @grpc/grpc-js, as an application that depends on another
 * version gets: its classes (Metadata, InterceptingCall, Client) are not this copy's.
 */
function secondGrpcCopy(): Grpc {
  const req = createRequire(__filename);
  const root = path.dirname(req.resolve('@grpc/grpc-js/package.json'));
  const ours = Object.entries(req.cache).filter(([k]) => k.startsWith(root));
  for (const [k] of ours) delete req.cache[k];
  try {
    return req('@grpc/grpc-js') as Grpc;
  } finally {
    for (const k of Object.keys(req.cache)) if (k.startsWith(root)) delete req.cache[k];
    for (const [k, m] of ours) req.cache[k] = m;
  }
}

/** A Trade (bidi) call through `client`: writes `n` orders, resolves with the fills. */
function trade(client: grpc.Client, n: number, metadata?: grpc.Metadata): Promise<Fill[]> {
  return new Promise((resolve, reject) => {
    const fills: Fill[] = [];
    const call = (client as unknown as AnyClient).Trade(...(metadata ? [metadata] : [])) as grpc.ClientDuplexStream<object, Fill>;
    call.on('data', (f: Fill) => fills.push(f));
    call.on('error', reject);
    call.on('end', () => resolve(fills));
    for (let i = 0; i < n; i++) call.write({ orderId: `o${i}`, symbol: 'ACME', quantity: 1 });
    call.end();
  });
}

/** A DepositBatch (client-streaming) call through `client`: resolves with the summary. */
function depositBatch(client: grpc.Client, amounts: number[], metadata?: grpc.Metadata): Promise<{ count: number; servedBy: string }> {
  return new Promise((resolve, reject) => {
    const cb = (err: grpc.ServiceError | null, v?: { count: number; servedBy: string }) => (err ? reject(err) : resolve(v!));
    const call = (client as unknown as AnyClient).DepositBatch(...(metadata ? [metadata, cb] : [cb])) as grpc.ClientWritableStream<object>;
    for (const amountCents of amounts) call.write({ accountId: 'batch', amountCents });
    call.end();
  });
}

describe('what the stub does with what the application hands it', () => {
  const nats = natsForSuite();
  let n1: Broker;

  beforeAll(async () => {
    n1 = await startBroker({ nodeId: 'n1', nats: [nats().url], cluster: 'caller-objects', capacity: 8, workMs: 1 });
  });

  describe('the caller’s Metadata', () => {
    const passThrough: grpc.Interceptor = (options, nextCall) => new grpc.InterceptingCall(nextCall(options));

    it.each([
      ['a server-streaming call', {}],
      ['a unary call when the client has interceptors', { interceptors: [passThrough] }],
    ])('is never written into (%s): reused after Commit, it carries no session token into another client’s call', async (_kind, opts) => {
      const client = bankClient([n1.endpoint], opts);
      const shared = new grpc.Metadata();
      shared.set('x-app', 'mine');
      const begin = await unary<{ transactionId: string }>(client, 'BeginTransaction', { accountId: 'h1' });
      expect(client.peerbroker.session.token).not.toBe('');
      // Within the session, with the application's Metadata object.
      if ('interceptors' in opts) await unary(client, 'GetBalance', { accountId: 'h1' }, { metadata: shared });
      else await serverStream(client, 'StreamStatements', { accountId: 'h1', count: 2 }, { metadata: shared });
      await unary(client, 'Commit', { transactionId: begin.value.transactionId });
      expect(client.peerbroker.session.token).toBe('');
      // Another client of the same channels, in no session, with the same Metadata: a plain call.
      const other = client.peerbroker.withSession();
      const r = await unary(other, 'GetBalance', { accountId: 'h1' }, { metadata: shared });
      expect(r.servedBy).toBe('n1');
      expect(shared.toJSON()).toEqual({ 'x-app': ['mine'] });
    });
  });

  it('runs the client’s interceptors on every call kind: unary, server-streaming, client-streaming, bidi', async () => {
    const seen: string[] = [];
    const auth: grpc.Interceptor = (options, nextCall) =>
      new grpc.InterceptingCall(nextCall(options), {
        start(md, listener, next) {
          seen.push(options.method_definition.path);
          md.set('authorization', 'Bearer t0k3n');
          next(md, listener);
        },
      });
    const bank = bankClient([n1.endpoint], { interceptors: [auth] });
    const securities = securitiesClient([n1.endpoint], { interceptors: [auth] });
    await unary(bank, 'GetBalance', { accountId: 'i1' });
    await serverStream(bank, 'StreamStatements', { accountId: 'i1', count: 2 });
    expect((await depositBatch(bank, [1, 2, 3])).count).toBe(3);
    expect(await trade(securities, 2)).toHaveLength(2);
    expect(seen).toEqual(['/bank.Banking/GetBalance', '/bank.Banking/StreamStatements', '/bank.Banking/DepositBatch', '/bank.Securities/Trade']);
  });

  describe('values from another copy of @grpc/grpc-js', () => {
    // A real gRPC server that answers with the `x-tenant` header it received, so a test sees
    // that the application's Metadata reached the node.
    let echo: grpc.Server;
    let endpoint: string;
    const other = secondGrpcCopy();
    const tenant = (call: { metadata: grpc.Metadata }) => String(call.metadata.get('x-tenant')[0] ?? '');

    beforeAll(async () => {
      const bank = grpc.loadPackageDefinition(bankDefinition()) as unknown as {
        bank: { Banking: grpc.ServiceClientConstructor; Securities: grpc.ServiceClientConstructor };
      };
      echo = new grpc.Server();
      echo.addService(bank.bank.Banking.service, {
        GetBalance: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { servedBy: tenant(call) }),
        StreamStatements: (call: grpc.ServerWritableStream<unknown, unknown>) => {
          call.write({ index: 0, servedBy: tenant(call) });
          call.end();
        },
        DepositBatch: (call: grpc.ServerReadableStream<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
          let count = 0;
          call.on('data', () => count++);
          call.on('end', () => cb(null, { count, servedBy: tenant(call) }));
        },
      });
      echo.addService(bank.bank.Securities.service, {
        Trade: (call: grpc.ServerDuplexStream<{ orderId: string }, unknown>) => {
          call.on('data', (o: { orderId: string }) => call.write({ orderId: o.orderId, servedBy: tenant(call) }));
          call.on('end', () => call.end());
        },
      });
      const port = await new Promise<number>((resolve, reject) =>
        echo.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
      );
      endpoint = `127.0.0.1:${port}`;
    });

    afterAll(() => {
      closeAllClients();
      echo?.forceShutdown();
    });

    it('takes a client class, Metadata and interceptors of another copy, on every call kind', async () => {
      expect(other.Metadata).not.toBe(grpc.Metadata);
      const pkg = other.loadPackageDefinition(bankDefinition()) as unknown as {
        bank: { Banking: grpc.ServiceClientConstructor; Securities: grpc.ServiceClientConstructor };
      };
      const md = () => {
        const m = new other.Metadata();
        m.set('x-tenant', 'tenant-7');
        return m as unknown as grpc.Metadata;
      };
      let intercepted = 0;
      const counting = ((options: grpc.InterceptorOptions, nextCall: (o: grpc.InterceptorOptions) => grpc.InterceptingCall) => {
        intercepted++;
        return new other.InterceptingCall(nextCall(options));
      }) as unknown as grpc.Interceptor;
      const bank = createClient(pkg.bank.Banking, { endpoints: [endpoint] });
      const securities = createClient(pkg.bank.Securities, { endpoints: [endpoint], interceptors: [counting] });
      try {
        expect((await unary(bank, 'GetBalance', { accountId: 'x' }, { metadata: md() })).servedBy).toBe('tenant-7');
        expect((await unary(bank, 'GetBalance', { accountId: 'x' }, { metadata: md(), interceptors: [counting] })).servedBy).toBe('tenant-7');
        expect((await serverStream(bank, 'StreamStatements', { accountId: 'x', count: 1 }, { metadata: md() })).servedBy).toEqual(['tenant-7']);
        expect((await depositBatch(bank, [1, 2], md())).servedBy).toBe('tenant-7');
        expect((await trade(securities, 2, md())).map((f) => f.servedBy)).toEqual(['tenant-7', 'tenant-7']);
        expect(intercepted).toBe(2);
      } finally {
        bank.close();
        securities.close();
      }
    });
  });
});
