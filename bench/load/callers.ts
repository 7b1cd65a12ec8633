/**
 * How a load generator makes one call to each kind of target (protocol.ts `Target`): a
 * `Caller` starts a call and reports how it ended, and which node ran it.
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from 'nats';
import { bankProto } from '../../examples/bank';
import { createClient, type BrokeredClient } from '../../src/client';
import { MD_FOLLOW, MD_LOCATION_NODE } from '../../src/wire';
import { EchoClient } from '../servers/echo-module';
import { makeFollower } from './follower';
import type { LoadConfig } from './protocol';

/** How a call ended: an error name (null when OK), the node that ran it, the status details. */
export type Done = (err: string | null, servedBy: string, details?: string) => void;

/** Makes calls to one target. */
export interface Caller {
  call(done: Done): void;
  close(): Promise<void>;
  /** Stub and follower: redirects followed and given up so far. */
  redirects?(): { followed: number; refused: number };
  /** Stub only. */
  stub?: BrokeredClient<grpc.Client>;
  /** Endpoints or subjects a warm-up must touch. */
  warmTargets: number;
}

type ClientCtor = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => grpc.Client;

function grpcError(err: grpc.ServiceError): string {
  return grpc.status[err.code] ?? `code ${err.code}`;
}

/**
 * The caller for `c.target`. `inFlight` (one Int32 per endpoint, shared by every thread of
 * the generator) is what a jsq caller counts and reads.
 */
export async function makeCaller(c: LoadConfig, inFlight?: Int32Array): Promise<Caller> {
  const deadline = () => Date.now() + c.deadlineMs;
  const payload = c.call.kind === 'echo' ? randomBytes(c.call.bytes) : undefined;
  const t = c.target;
  const Ctor = (c.call.kind === 'quote' ? bankProto().bank.Securities : EchoClient) as unknown as ClientCtor;
  const quoteDone = (done: Done) => (err: grpc.ServiceError | null, res?: unknown) =>
    err ? done(grpcError(err), '', err.details) : done(null, (res as { servedBy?: string } | undefined)?.servedBy || '?');
  if (t.kind === 'follower') {
    const f = makeFollower(Ctor, c.call.kind === 'quote' ? 'GetQuote' : 'Echo', t.endpoints[0]);
    const req = c.call.kind === 'quote' ? { symbol: 'ACME' } : payload;
    return {
      call: (done) => f.call(req, deadline(), quoteDone(done)),
      redirects: () => ({ followed: f.stats.redirectsFollowed, refused: f.stats.redirectsRefused }),
      warmTargets: t.endpoints.length,
      close: async () => f.close(),
    };
  }
  if (t.kind === 'jsq') {
    const creds = grpc.credentials.createInsecure();
    const clients = t.endpoints.map((ep) => new Ctor(ep, creds) as unknown as Record<string, (...a: unknown[]) => void>);
    const counts = inFlight ?? new Int32Array(new SharedArrayBuffer(4 * clients.length));
    let rotate = 0;
    const call = (done: Done) => {
      // Fewest in flight wins; ties go round-robin, so an idle cluster is not all sent to n1.
      rotate = (rotate + 1) % clients.length;
      let best = rotate;
      for (let k = 1; k < clients.length; k++) {
        const i = (rotate + k) % clients.length;
        if (Atomics.load(counts, i) < Atomics.load(counts, best)) best = i;
      }
      Atomics.add(counts, best, 1);
      const end = quoteDone(done);
      clients[best].GetQuote({ symbol: 'ACME' }, { deadline: deadline() }, (err: grpc.ServiceError | null, res?: unknown) => {
        Atomics.sub(counts, best, 1);
        end(err, res);
      });
    };
    return { call, warmTargets: clients.length, close: async () => clients.forEach((cl) => (cl as unknown as grpc.Client).close()) };
  }
  if (t.kind === 'grpc' || t.kind === 'grpc-rr' || t.kind === 'stub' || t.kind === 'bounce') {
    const creds = grpc.credentials.createInsecure();
    let clients: grpc.Client[];
    let stub: BrokeredClient<grpc.Client> | undefined;
    if (t.kind === 'stub') {
      stub = createClient(Ctor, { endpoints: t.endpoints });
      clients = [stub];
    } else {
      const eps = t.kind === 'grpc-rr' ? t.endpoints : t.endpoints.slice(0, 1);
      clients = eps.map((ep) => new Ctor(ep, creds));
    }
    let next = 0;
    const pick = () => {
      const client = clients[next];
      next = next + 1 === clients.length ? 0 : next + 1;
      return client as unknown as Record<string, (...a: unknown[]) => void>;
    };
    const follow = new grpc.Metadata();
    follow.set(MD_FOLLOW, '1');
    const call =
      t.kind === 'bounce'
        ? (done: Done) =>
            pick().GetQuote({ symbol: 'ACME' }, follow, { deadline: deadline() }, (err: grpc.ServiceError | null) => {
              const location = err?.code === grpc.status.RESOURCE_EXHAUSTED ? err.metadata.get(MD_LOCATION_NODE)[0] : undefined;
              if (location !== undefined) done(null, String(location));
              else done(err ? grpcError(err) : 'NOT_REDIRECTED', '');
            })
        : c.call.kind === 'quote'
          ? (done: Done) => pick().GetQuote({ symbol: 'ACME' }, { deadline: deadline() }, quoteDone(done))
          : (done: Done) =>
              pick().Echo(payload, { deadline: deadline() }, (err: grpc.ServiceError | null, res?: Buffer) =>
                err ? done(grpcError(err), '', err.details) : res?.length === payload!.length ? done(null, 'server') : done('SHORT_ANSWER', ''),
              );
    const redirects = stub ? () => ({ followed: stub.peerbroker.stats.redirectsFollowed, refused: stub.peerbroker.stats.redirectsRefused }) : undefined;
    return {
      call,
      stub,
      redirects,
      warmTargets: clients.length,
      close: async () => clients.forEach((cl) => cl.close()),
    };
  }
  if (t.kind === 'nats') {
    const nc: NatsConnection = await connect({ servers: t.servers, name: `loadgen-${c.id}`, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    const def = bankProto().bank.Securities.service.GetQuote;
    const request = c.call.kind === 'quote' ? def.requestSerialize({ symbol: 'ACME' }) : payload!;
    const expect = payload?.length ?? 0;
    const call = (done: Done) => {
      nc.request(t.subject, request, { timeout: c.deadlineMs }).then(
        (msg) => {
          if (msg.headers?.get('error')) return done(`nats:${msg.headers.get('error')}`, '', 'responder: queue full');
          if (c.call.kind === 'quote') return done(null, (def.responseDeserialize(Buffer.from(msg.data)) as { servedBy: string }).servedBy);
          return msg.data.length === expect ? done(null, 'server') : done('SHORT_ANSWER', '');
        },
        (err: { code?: string; message?: string }) => done(`nats:${err.code ?? 'ERROR'}`, '', err.message),
      );
    };
    return { call, warmTargets: 1, close: () => nc.close() };
  }
  if (t.kind === 'http') return httpCaller(t.url, t.client, c.deadlineMs);
  // Moleculer over NATS: its own serializer (JSON) and envelope, every byte through the NATS server.
  const { ServiceBroker } = require('moleculer') as typeof import('moleculer');
  const broker = new ServiceBroker({
    nodeID: `loadgen-${c.id}-${process.pid}`,
    transporter: { type: 'NATS', options: { servers: t.servers, maxReconnectAttempts: -1 } },
    logger: false,
    requestTimeout: c.deadlineMs,
    metrics: false,
    tracing: false,
  });
  await broker.start();
  await broker.waitForServices(['echo'], 15_000);
  const data = payload ? 'x'.repeat(payload.length) : 'ACME';
  const call = (done: Done) => {
    broker.call('echo.echo', { data }).then(
      (res: unknown) => ((res as { data?: string }).data?.length === data.length ? done(null, 'server') : done('SHORT_ANSWER', '')),
      (err: { type?: string; name?: string }) => done(`moleculer:${err.type ?? err.name ?? 'ERROR'}`, ''),
    );
  };
  return { call, warmTargets: 1, close: () => broker.stop() };
}

/** The body of every HTTP call: `Securities.GetQuote`'s request in proto3 JSON. */
const HTTP_BODY = '{"symbol":"ACME"}';

/**
 * POSTs of `Securities.GetQuote` as JSON to `url`: with Node's `fetch`, which follows a 307 by
 * itself (counted as a redirect followed), or with `node:http` on a keep-alive agent (the least
 * a Node client spends on an HTTP call; it follows nothing).
 */
function httpCaller(url: string, client: 'fetch' | 'agent', deadlineMs: number): Caller {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  let followed = 0;
  // What an answer says: the node that ran the call, or the error's name and details.
  const ended = (done: Done, statusCode: number, text: string) => {
    let body: { servedBy?: string; code?: string; message?: string };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      return done(`http:${statusCode}:not-json`, '', text.slice(0, 200));
    }
    if (statusCode !== 200) return done(`http:${statusCode}:${body.code ?? ''}`, '', body.message);
    done(null, body.servedBy || '?');
  };
  const failed = (done: Done) => (err: Error) => done(err.name === 'TimeoutError' || err.name === 'AbortError' ? 'timeout' : `http:${err.message}`, '', err.message);
  const viaAgent = (doneOnce: Done) => {
    // A request can fail after its answer began (the socket): the call ends once.
    let over = false;
    const done: Done = (err, node, details) => {
      if (over) return;
      over = true;
      doneOnce(err, node, details);
    };
    const req = http.request(url, { method: 'POST', agent, timeout: deadlineMs, headers: { 'content-type': 'application/json', 'content-length': HTTP_BODY.length } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => ended(done, res.statusCode ?? 0, text));
      res.on('error', failed(done));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { name: 'TimeoutError' })));
    req.on('error', failed(done));
    req.end(HTTP_BODY);
  };
  const viaFetch = (done: Done) => {
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: HTTP_BODY, signal: AbortSignal.timeout(deadlineMs) })
      .then((res) => res.text().then((text) => ({ res, text })))
      .then(({ res, text }) => {
        if (res.redirected) followed++;
        ended(done, res.status, text);
      }, failed(done));
  };
  return {
    call: client === 'agent' ? viaAgent : viaFetch,
    redirects: client === 'fetch' ? () => ({ followed, refused: 0 }) : undefined,
    warmTargets: 1,
    close: async () => agent.destroy(),
  };
}

