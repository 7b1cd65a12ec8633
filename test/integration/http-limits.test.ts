import type * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { bankImplementations, bankProto } from '../../examples/bank';
import { Broker, type BrokerOptions } from '../../src';
import { createLogger } from '../../src/log';
import { sleep, waitFor } from '../helpers/brokers';
import { alive, collectGarbage } from '../helpers/gc';
import { postJson } from '../helpers/http';
import { rawSocket, rawSockets } from '../helpers/sockets';

// Lone brokers (no NATS) with an HTTP listener: what the node's caps hold of HTTP, and what a
// call leaves behind when its client goes away.

const own = new Set<Broker>();
const BALANCE = '/bank.Banking/GetBalance';

/** A broker serving the bank example over HTTP, with some of its handlers replaced. */
async function httpBroker(nodeId: string, options: Omit<BrokerOptions, 'nodeId'>, banking: Record<string, unknown> = {}): Promise<Broker> {
  const broker = new Broker({ nodeId, listen: '127.0.0.1:0', httpListen: '127.0.0.1:0', logger: createLogger({ level: 'error' }), ...options });
  const impl = bankImplementations(nodeId, 1);
  broker.addService(bankProto().bank.Banking.service, { ...impl.banking, ...banking } as unknown as grpc.UntypedServiceImplementation);
  own.add(broker);
  await broker.start();
  return broker;
}

/** The value of this node's metric `peerbroker_<name>`. */
async function metric(b: Broker, name: string): Promise<number> {
  const m = b.metrics.getSingleMetric(`peerbroker_${name}`);
  return (await m!.get()).values.find((v) => v.labels.node === b.nodeId)?.value ?? 0;
}

/** `host:port` of the node's HTTP listener. */
const hostOf = (b: Broker) => new URL(b.httpUrl!).host;

afterAll(async () => {
  await Promise.all([...own].map((b) => b.stop()));
});

describe('the HTTP listener under the node caps', () => {
  it('counts its connections against max-connections: past it a new one is closed at once, and one that closes makes room', async () => {
    const b = await httpBroker('conns', { maxConnections: 3 });
    const first = await rawSockets(hostOf(b), 5);
    await sleep(300);
    expect(first.map((s) => s.closed())).toEqual([false, false, false, true, true]);
    expect(await metric(b, 'connections')).toBe(3);
    first[0].socket.destroy();
    await waitFor(async () => (await metric(b, 'connections')) === 2, 5_000, 20, 'the closed connection to be counted out');
    const more = await rawSockets(hostOf(b), 2);
    await sleep(300);
    expect(more.map((s) => s.closed())).toEqual([false, true]);
    expect(await metric(b, 'connections_refused_total')).toBe(3);
    for (const s of [...first, ...more]) s.socket.destroy();
  });

  it('counts every request as an open call against max-streams, half-open ones too, and refuses the next with 429', async () => {
    const b = await httpBroker('calls', { maxStreams: 2 });
    // Two requests whose bodies never come: each holds a call, as a half-open HTTP/2 stream does.
    const held = await Promise.all([rawSocket(hostOf(b)), rawSocket(hostOf(b))]);
    for (const h of held) h.socket.write(`POST ${BALANCE} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n`);
    await waitFor(async () => (await metric(b, 'open_streams')) === 2, 5_000, 20, 'two calls open');
    const refused = await postJson(b.httpUrl!, BALANCE, { accountId: 'a' });
    expect(refused.status).toBe(429);
    expect(refused.json).toEqual({ code: 'resource_exhausted', message: "peerbroker: node 'calls' has 2 calls open, its limit (max-streams); the call did not run" });
    expect(await metric(b, 'streams_refused_total')).toBe(1);
    held[0].socket.destroy();
    await waitFor(async () => (await metric(b, 'open_streams')) === 1, 5_000, 20, 'the closed call to be counted out');
    expect((await postJson(b.httpUrl!, BALANCE, { accountId: 'a' })).json).toMatchObject({ servedBy: 'calls' });
    held[1].socket.destroy();
  });
});

describe('what an HTTP call leaves behind when its client goes away', () => {
  it('lets go of a unary call whose client left before its deadline: the deadline timer goes with the connection', async () => {
    const calls: Array<WeakRef<object>> = [];
    // A handler that never answers: its slot is taken back 50 ms after the cancel.
    const b = await httpBroker('deadline', { cancelGraceMs: 50 }, { GetBalance: (call: object) => void calls.push(new WeakRef(call)) });
    const client = new AbortController();
    const answer = fetch(b.httpUrl + BALANCE, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'connect-timeout-ms': '60000' },
      body: '{"accountId":"a"}',
      signal: client.signal,
    }).catch(() => undefined);
    await waitFor(() => calls.length === 1, 5_000, 10, 'the handler to run');
    client.abort();
    await answer;
    await waitFor(() => b.load() === 0, 5_000, 10, 'the slot taken back');
    await collectGarbage();
    expect(alive(calls)).toBe(0);
  });

  it("ends a streamed answer's waiting writes when its reader leaves: the handler gets to its end(), nothing stays", async () => {
    const calls: Array<WeakRef<object>> = [];
    const big = { accountId: 'x'.repeat(64 * 1024), index: 0, amountCents: 1, servedBy: 'stall' };
    // As a handler is written: write until told to wait, wait for 'drain', stop once cancelled.
    const stream = (call: grpc.ServerWritableStream<unknown, unknown>) => {
      calls.push(new WeakRef(call));
      void (async () => {
        while (!call.cancelled) if (!call.write(big)) await new Promise((resolve) => call.once('drain', resolve));
        call.end();
      })();
    };
    // A grace far longer than the test: only the handler's own end() frees the slot in time.
    const b = await httpBroker('stall', { cancelGraceMs: 60_000 }, { StreamStatements: stream });
    const reader = await rawSocket(hostOf(b));
    reader.socket.pause();
    const body = '{"accountId":"a","count":1}';
    reader.socket.write(`POST /bank.Banking/StreamStatements HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    await waitFor(() => b.load() > 0, 5_000, 10, 'the stream to run');
    await sleep(300); // the reader reads nothing: the handler waits for 'drain'
    reader.socket.destroy();
    await waitFor(() => b.load() === 0, 3_000, 10, 'the handler to end and free its slot');
    await collectGarbage();
    expect(alive(calls)).toBe(0);
  });
});
