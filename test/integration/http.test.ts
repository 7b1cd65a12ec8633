import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src';
import { MAX_EVENT_STREAMS } from '../../src/http/limits';
import { envelope } from '../../src/http/stream-sink';
import { holdSlots, members, startBroker, startBrokerGroup, waitFor, waitForLoad, type SlotHold } from '../helpers/brokers';
import { makeTestPki } from '../helpers/certs';
import { postJson, postNdjson } from '../helpers/http';
import { natsForSuite } from '../helpers/suite';

// Capacity 4: each call in flight is 0.25 of load; threshold 0.5, margin 0.2.
const CAPACITY = 4;
const PERIOD_MS = 500;
const BALANCE = '/bank.Banking/GetBalance';

describe('HTTP/JSON calls (in-process brokers, real nats-server)', () => {
  const nats = natsForSuite();
  let n1: Broker;
  let n2: Broker;
  let holds: SlotHold[] = [];
  const url = (b: Broker) => b.httpUrl!;

  beforeAll(async () => {
    [n1, n2] = await startBrokerGroup(['n1', 'n2'], {
      nats: [nats().url],
      cluster: 'http',
      capacity: CAPACITY,
      periodMs: PERIOD_MS,
      workMs: 5,
      peerChoice: 'least-loaded',
      httpListen: '127.0.0.1:0',
      httpMaxBodyBytes: 2048,
    });
    // Each node knows the other's HTTP URL from its reports before any redirect is tried.
    await waitFor(() => n1.peers.get('n2')?.httpUrl === url(n2) && n2.peers.get('n1')?.httpUrl === url(n1), 10_000, 20, 'the HTTP URLs in the reports');
  });

  afterEach(async () => {
    for (const h of holds) h.release();
    holds = [];
    for (const b of [n1, n2]) await waitForLoad(n2, b, 0);
  });

  /** Makes n1 busy (3 of 4 slots held by plain gRPC calls) while n2 is idle, as both see it. */
  async function busyN1(): Promise<void> {
    holds.push(holdSlots(n1.endpoint, 3));
    await waitForLoad(n2, n1, 0.75);
    await waitForLoad(n1, n2, 0);
  }

  it('answers a JSON call with the JSON of the answer, and names the node that ran it', async () => {
    const r = await postJson(url(n1), BALANCE, { accountId: 'acct-1' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(r.headers.get('peerbroker-node')).toBe('n1');
    expect(r.json).toEqual({ accountId: 'acct-1', balanceCents: '0', servedBy: 'n1' });
  });

  it('lists every node with its HTTP URL in Members', async () => {
    const list = await members(n1.endpoint);
    expect(Object.fromEntries(list.map((m) => [m.nodeId, m.httpUrl]))).toEqual({ n1: url(n1), n2: url(n2) });
    expect(url(n1)).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('answers 307 at a busy node, with Location at the idle peer, the same path and one hop', async () => {
    await busyN1();
    const r = await postJson(url(n1), `${BALANCE}?trace=7`, { accountId: 'acct-1' }, { redirect: 'manual' });
    expect(r.status).toBe(307);
    expect(r.headers.get('location')).toBe(`${url(n2)}${BALANCE}?trace=7&peerbroker-hops=1`);
    expect(r.headers.get('peerbroker-reason')).toBe('load');
    expect(r.headers.get('peerbroker-location-node')).toBe('n2');
    expect(r.json).toMatchObject({ redirect: { node: 'n2', reason: 'load' } });
  });

  it('keeps the query as sent in Location, its hop count replaced by one more at the end', async () => {
    await busyN1();
    const r = await postJson(url(n1), `${BALANCE}?b=%20x&peerbroker-hops=0&flag&a=1+2`, { accountId: 'acct-1' }, { redirect: 'manual' });
    expect(r.status).toBe(307);
    expect(r.headers.get('location')).toBe(`${url(n2)}${BALANCE}?b=%20x&flag&a=1+2&peerbroker-hops=1`);
  });

  it('never names another host in Location, whatever the request line says', async () => {
    await busyN1();
    const { port } = new URL(url(n1));
    const head = await new Promise<string>((resolve, reject) => {
      const s = net.connect(Number(port), '127.0.0.1', () =>
        s.end(`POST http://evil.example${BALANCE}?x=1 HTTP/1.1\r\nhost: evil.example\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`),
      );
      let text = '';
      s.on('data', (c: Buffer) => (text += c.toString()));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    expect(head).toMatch(/^HTTP\/1\.1 307 /);
    expect(head).toContain(`location: ${url(n2)}${BALANCE}?x=1&peerbroker-hops=1\r\n`);
  });

  it('is followed by fetch without any client code: the idle peer runs the call', async () => {
    await busyN1();
    const before = n1.stats.redirected;
    const r = await postJson(url(n1), '/bank.Banking/Deposit', { accountId: 'acct-1', amountCents: '250' });
    expect(r.status).toBe(200);
    expect(r.redirected).toBe(true);
    expect(r.url).toBe(`${url(n2)}/bank.Banking/Deposit?peerbroker-hops=1`);
    expect(r.json).toMatchObject({ servedBy: 'n2', balanceCents: '250' });
    expect(n1.stats.redirected - before).toBe(1);
  });

  it('runs the call where it lands for a client that says it does not follow (peerbroker-follow: 0)', async () => {
    await busyN1();
    const r = await postJson(url(n1), BALANCE, { accountId: 'acct-1' }, { headers: { 'peerbroker-follow': '0' }, redirect: 'manual' });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ servedBy: 'n1' });
  });

  it('relays the call of a client that does not follow when the node forwards plain clients (forwardLegacy)', async () => {
    await busyN1();
    n1.configure({ forwardLegacy: true });
    try {
      const r = await postJson(url(n1), BALANCE, { accountId: 'acct-1' }, { headers: { 'peerbroker-follow': '0' }, redirect: 'manual' });
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ servedBy: 'n2' });
    } finally {
      n1.configure({ forwardLegacy: false });
    }
  });

  it('redirects a server-streaming call too, and fetch reads the stream from the peer', async () => {
    await busyN1();
    const r = await postNdjson(url(n1), '/bank.Banking/StreamStatements', { accountId: 'acct-1', count: 2 });
    expect(r.status).toBe(200);
    expect(r.lines.map((l) => (l.result as { servedBy: string }).servedBy)).toEqual(['n2', 'n2']);
  });

  it('keeps a session on its owner over HTTP: token in a header, redirected back to the owner, ended by the exit call', async () => {
    const begin = await postJson<{ transactionId: string }>(url(n1), '/bank.Banking/BeginTransaction', { accountId: 'acct-s' });
    expect(begin.status).toBe(200);
    const token = begin.headers.get('peerbroker-session')!;
    expect(token).toMatch(/^n1\.[A-Za-z0-9_-]{8,}$/);
    await busyN1();
    // Sent to the idle peer, the call of the session goes back to its owner.
    const bounce = await postJson(url(n2), BALANCE, { accountId: 'acct-s' }, { headers: { 'peerbroker-session': token }, redirect: 'manual' });
    expect(bounce.status).toBe(307);
    expect(bounce.headers.get('peerbroker-reason')).toBe('session');
    expect(bounce.headers.get('location')).toBe(`${url(n1)}${BALANCE}?peerbroker-hops=1`);
    const followed = await postJson(url(n2), '/bank.Banking/Deposit', { accountId: 'acct-s', amountCents: '5' }, { headers: { 'peerbroker-session': token } });
    expect(followed.json).toMatchObject({ servedBy: 'n1' });
    const commit = await postJson(url(n1), '/bank.Banking/Commit', { transactionId: begin.json.transactionId }, { headers: { 'peerbroker-session': token } });
    expect(commit.json).toEqual({ transactionId: begin.json.transactionId, committed: true });
    expect(commit.headers.get('peerbroker-session')).toBe('');
    // The session is over: the busy owner sends the next call away.
    const after = await postJson(url(n1), BALANCE, { accountId: 'acct-s' });
    expect(after.json).toMatchObject({ servedBy: 'n2' });
  });

  it('refuses bad JSON with 400 and a message naming what is wrong', async () => {
    const notJson = await postJson(url(n1), BALANCE, undefined, { rawBody: '{"accountId": ' });
    expect(notJson.status).toBe(400);
    expect(notJson.json).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/^peerbroker: the body is not JSON: /) });
    const wrongField = await postJson(url(n1), '/bank.Banking/Deposit', { accountId: 'a', amountCents: 'ten' });
    expect(wrongField.status).toBe(400);
    expect(wrongField.json).toEqual({
      code: 'invalid_argument',
      message: `peerbroker: invalid bank.DepositRequest: 'amountCents': expected an integer (a number or a decimal string), got "ten"`,
    });
    const unknown = await postJson(url(n1), BALANCE, { acount: 'a' });
    expect(unknown.json).toMatchObject({ message: expect.stringContaining(`unknown field 'acount' (bank.GetBalanceRequest has: accountId)`) });
  });

  it('refuses a body over the limit with 413 before running anything', async () => {
    const run = n1.stats.run;
    const r = await postJson(url(n1), BALANCE, { accountId: 'x'.repeat(4096) });
    expect(r.status).toBe(413);
    expect(r.json).toMatchObject({ code: 'resource_exhausted', message: expect.stringMatching(/this node takes at most 2048 \(--http-max-body-bytes\)/) });
    expect(n1.stats.run).toBe(run);
  });

  it('answers 404 for a method the node does not have, 415 for a body that is not JSON, 405 for GET', async () => {
    const missing = await postJson(url(n1), '/bank.Banking/Nope', {});
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ code: 'unimplemented', message: expect.stringContaining(`no method '/bank.Banking/Nope' on node 'n1'`) });
    const form = await postJson(url(n1), BALANCE, undefined, { rawBody: 'accountId=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
    expect(form.json).toMatchObject({ message: expect.stringContaining(`-H 'content-type: application/json'`) });
    const get = await fetch(url(n1) + BALANCE);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST, OPTIONS');
  });

  it('maps a handler error to its Connect code and HTTP status', async () => {
    const r = await postJson(url(n1), '/bank.Banking/Deposit', { accountId: 'a', amountCents: '-5' });
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ code: 'invalid_argument', message: "'amount_cents' must be positive" });
  });

  it('streams a server-streaming answer as one JSON object a line', async () => {
    const r = await postNdjson(url(n1), '/bank.Banking/StreamStatements', { accountId: 'acct-1', count: 3 });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/x-ndjson');
    expect(r.lines).toEqual([0, 1, 2].map((i) => ({ result: { accountId: 'acct-1', index: i, amountCents: String((i + 1) * 100), servedBy: 'n1' } })));
  });

  it('streams in Connect envelopes for Connect clients, ending with an end-of-stream message', async () => {
    const body = envelope(0, Buffer.from(JSON.stringify({ symbols: ['ACME'], count: 2 })));
    const res = await fetch(url(n1) + '/bank.Securities/WatchQuotes', { method: 'POST', headers: { 'content-type': 'application/connect+json' }, body: new Uint8Array(body) });
    expect(res.headers.get('content-type')).toBe('application/connect+json');
    const bytes = Buffer.from(await res.arrayBuffer());
    const frames: Array<{ flags: number; json: Record<string, unknown> }> = [];
    for (let at = 0; at < bytes.length; ) {
      const len = bytes.readUInt32BE(at + 1);
      frames.push({ flags: bytes[at], json: JSON.parse(bytes.subarray(at + 5, at + 5 + len).toString()) });
      at += 5 + len;
    }
    expect(frames.map((f) => f.flags)).toEqual([0, 0, 2]);
    expect(frames[0].json).toMatchObject({ symbol: 'ACME', servedBy: 'n1' });
    expect(frames[2].json).toEqual({});
  });

  it('gives an HTTP call a slot like a gRPC call: calls in flight count in the load', async () => {
    const slow = Array.from({ length: 2 }, () => postNdjson(url(n1), '/bank.Banking/StreamStatements', { accountId: 'slow', count: 60 }, { 'peerbroker-follow': '0' }));
    await waitFor(() => n1.load() === 0.5, 5_000, 5, 'two HTTP calls holding two of four slots');
    await Promise.all(slow);
    await waitFor(() => n1.load() === 0, 5_000, 5, 'the slots freed');
  });

  it('answers 504 when the call outlives connect-timeout-ms', async () => {
    const r = await postNdjson(url(n1), '/bank.Banking/StreamStatements', { accountId: 'slow', count: 200 }, { 'connect-timeout-ms': '100' });
    expect(r.lines.at(-1)).toEqual({ error: { code: 'deadline_exceeded', message: 'peerbroker: deadline exceeded (connect-timeout-ms)' } });
    await waitFor(() => n1.load() === 0, 5_000, 5, 'the slot freed');
  });
});

describe('HTTP calls routed by service', () => {
  const nats = natsForSuite();

  it('sends a call for a service the node does not host to a node that does, with reason service', async () => {
    const common = { nats: [nats().url], cluster: 'http-service', periodMs: PERIOD_MS, httpListen: '127.0.0.1:0' };
    const [banking, securities] = await startBrokerGroup(['banking', 'securities'], common, {
      banking: { services: ['bank.Banking'] },
      securities: { services: ['bank.Securities'] },
    });
    await waitFor(() => banking.peers.get('securities')?.httpUrl, 10_000, 20, 'the HTTP URL of securities');
    const r = await postJson(banking.httpUrl!, '/bank.Securities/GetQuote', { symbol: 'ACME' }, { redirect: 'manual' });
    expect(r.status).toBe(307);
    expect(r.headers.get('peerbroker-reason')).toBe('service');
    expect(r.headers.get('location')).toBe(`${securities.httpUrl}/bank.Securities/GetQuote?peerbroker-hops=1`);
    expect((await postJson(banking.httpUrl!, '/bank.Securities/GetQuote', { symbol: 'ACME' })).json).toMatchObject({ servedBy: 'securities' });
  });
});

describe('HTTP calls redirected to a node without an HTTP listener', () => {
  const nats = natsForSuite();

  it('are relayed over gRPC by the busy node, so the call still runs on the peer, and counted as forwarded', async () => {
    const common = { nats: [nats().url], cluster: 'http-relay', capacity: CAPACITY, periodMs: PERIOD_MS, workMs: 5 };
    const web = await startBroker({ ...common, nodeId: 'web', httpListen: '127.0.0.1:0' });
    const grpcOnly = await startBroker({ ...common, nodeId: 'grpc-only' });
    await waitFor(() => web.members().filter((m) => m.status === 'ONLINE').length === 2, 10_000, 20, 'web to see grpc-only');
    const hold = holdSlots(web.endpoint, 3);
    try {
      await waitForLoad(grpcOnly, web, 0.75);
      await waitForLoad(web, grpcOnly, 0);
      const r = await postJson(web.httpUrl!, BALANCE, { accountId: 'a' }, { redirect: 'manual' });
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ servedBy: 'grpc-only' });
      // A relay, as for a plain gRPC client: no redirect was answered.
      expect(web.stats.forwarded).toBe(1);
      const sent = async (name: string) => (await web.metrics.getSingleMetric(name)!.get()).values.find((v) => v.labels.target === 'grpc-only')?.value;
      expect(await sent('peerbroker_forwards_total')).toBe(1);
      expect(await sent('peerbroker_redirects_total')).toBeUndefined();
    } finally {
      hold.release();
    }
  });
});

describe('HTTP bounds and TLS', () => {
  const nats = natsForSuite();

  it('refuses a request head over 16 KiB with 431, and a 33rd open cluster page with 503', async () => {
    const b = await startBroker({ nodeId: 'bounds', nats: [nats().url], cluster: 'http-bounds', httpListen: '127.0.0.1:0' });
    const big = await fetch(b.httpUrl + BALANCE, { method: 'POST', headers: { 'content-type': 'application/json', 'x-big': 'x'.repeat(20_000) }, body: '{}' });
    expect(big.status).toBe(431);
    const pages = new AbortController();
    const open = await Promise.all(Array.from({ length: MAX_EVENT_STREAMS }, () => fetch(`${b.httpUrl}/peerbroker/events`, { signal: pages.signal })));
    expect(open.map((r) => r.status)).toEqual(Array(MAX_EVENT_STREAMS).fill(200));
    const more = await fetch(`${b.httpUrl}/peerbroker/events`);
    expect(more.status).toBe(503);
    expect(more.headers.get('retry-after')).toBe('5');
    expect(await more.json()).toMatchObject({ code: 'unavailable', message: expect.stringContaining(`${MAX_EVENT_STREAMS} cluster pages are open`) });
    pages.abort();
  });

  it('serves HTTPS with the node certificate and requires a client certificate when a CA is set', async () => {
    const pki = makeTestPki('http-tls');
    try {
      const cert = pki.issue('web', { ips: ['127.0.0.1'] });
      const client = pki.issue('client');
      const b = await startBroker({
        nodeId: 'tls',
        nats: [nats().url],
        cluster: 'http-tls',
        httpListen: '127.0.0.1:0',
        tls: { certFile: cert.cert, keyFile: cert.key, caFile: pki.ca },
      });
      expect(b.httpUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const ca = fs.readFileSync(pki.ca);
      const ok = await httpsPost(b.httpUrl! + BALANCE, { ca, cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key) });
      expect(ok.status).toBe(200);
      expect(JSON.parse(ok.body)).toMatchObject({ servedBy: 'tls' });
      await expect(httpsPost(b.httpUrl! + BALANCE, { ca })).rejects.toThrow();
    } finally {
      pki.cleanup();
    }
  });
});

/** POSTs `{}` over HTTPS with the given CA and client certificate. */
function httpsPost(url: string, tls: https.RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false, ...tls }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end('{"accountId":"a"}');
  });
}
