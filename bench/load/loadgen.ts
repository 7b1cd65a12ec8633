/**
 * A load generator process: offers calls to one target as its brief says, bounded in
 * count and time, and sends back what it measured. Started by the bench with fork().
 *
 *   node dist/bench/load/loadgen.js '<LoadConfig as JSON>'
 */
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from 'nats';
import { bankProto } from '../../examples/bank';
import { createClient, type BrokeredClient } from '../../src/client';
import { MD_FOLLOW, MD_LOCATION_NODE } from '../../src/wire';
import { Histogram } from '../lib/histogram';
import { EchoClient } from '../servers/echo-module';
import type { FromGenerator, LoadConfig, LoadResult, ToGenerator } from './protocol';

/** Calls made before `ready`, so every channel and connection is warm. */
const WARM_CALLS = 10;
/** Time allowed after the window for calls in flight to end (on top of their deadline). */
const DRAIN_GRACE_MS = 1_000;

type Done = (err: string | null, servedBy: string) => void;

interface Caller {
  call(done: Done): void;
  close(): Promise<void>;
  /** Stub only. */
  stub?: BrokeredClient<grpc.Client>;
  /** Endpoints or subjects a warm-up must touch. */
  warmTargets: number;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;

function send(msg: FromGenerator): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

function grpcError(err: grpc.ServiceError): string {
  return grpc.status[err.code] ?? `code ${err.code}`;
}

async function makeCaller(c: LoadConfig): Promise<Caller> {
  const deadline = () => Date.now() + c.deadlineMs;
  const payload = c.call.kind === 'echo' ? randomBytes(c.call.bytes) : undefined;
  const t = c.target;
  if (t.kind === 'grpc' || t.kind === 'grpc-rr' || t.kind === 'stub' || t.kind === 'bounce') {
    const creds = grpc.credentials.createInsecure();
    const Ctor = (c.call.kind === 'quote' ? bankProto().bank.Securities : EchoClient) as unknown as new (
      address: string,
      credentials: grpc.ChannelCredentials,
      options?: grpc.ClientOptions,
    ) => grpc.Client;
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
        ? (done: Done) =>
            pick().GetQuote({ symbol: 'ACME' }, { deadline: deadline() }, (err: grpc.ServiceError | null, res?: { servedBy: string }) =>
              err ? done(grpcError(err), '') : done(null, res?.servedBy || '?'),
            )
        : (done: Done) =>
            pick().Echo(payload, { deadline: deadline() }, (err: grpc.ServiceError | null, res?: Buffer) =>
              err ? done(grpcError(err), '') : res?.length === payload!.length ? done(null, 'server') : done('SHORT_ANSWER', ''),
            );
    return {
      call,
      stub,
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
          if (msg.headers?.get('error')) return done(`nats:${msg.headers.get('error')}`, '');
          if (c.call.kind === 'quote') return done(null, (def.responseDeserialize(Buffer.from(msg.data)) as { servedBy: string }).servedBy);
          return msg.data.length === expect ? done(null, 'server') : done('SHORT_ANSWER', '');
        },
        (err: { code?: string }) => done(`nats:${err.code ?? 'ERROR'}`, ''),
      );
    };
    return { call, warmTargets: 1, close: () => nc.close() };
  }
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

async function warm(caller: Caller): Promise<void> {
  const n = Math.max(WARM_CALLS, 3 * caller.warmTargets);
  for (let i = 0; i < n; i++) await new Promise<void>((r) => caller.call(() => r()));
}

function waitGo(): Promise<number> {
  return new Promise((resolve) => {
    process.on('message', (m: ToGenerator) => {
      if (m.type === 'go') resolve(m.atEpochMs);
    });
  });
}

function run(caller: Caller, atEpochMs: number): Promise<LoadResult> {
  const t0 = performance.now() + (atEpochMs - Date.now());
  const hist = new Histogram();
  const bucketHist: Histogram[] = [];
  const timeline: Record<string, number[]> = {};
  const failedTimeline: number[] = [];
  const servedBy: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let started = 0;
  let skipped = 0;
  let ok = 0;
  let inflight = 0;
  let inWindow = false;
  let stopped = false;
  let cpuAt0 = process.cpuUsage();
  let cpuMs = 0;
  let wStart = 0;
  let windowMs = 0;
  let redirects0 = { followed: 0, refused: 0 };
  let redirects = { followed: 0, refused: 0 };
  const stubStats = () => ({ ...(caller.stub?.peerbroker.stats ?? { redirectsFollowed: 0, redirectsRefused: 0 }) });

  const bump = (arr: number[], i: number) => {
    while (arr.length <= i) arr.push(0);
    arr[i]++;
  };

  return new Promise<LoadResult>((resolve) => {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      resolve({
        id: cfg.id,
        started,
        skipped,
        okInWindow: ok,
        errorsInWindow: errors,
        latency: hist.toData(),
        servedBy,
        timeline,
        failedTimeline,
        bucketLatency: Array.from(bucketHist, (h) => (h ? h.toData() : null)),
        cpuMs,
        windowMs,
        redirectsFollowed: redirects.followed - redirects0.followed,
        redirectsRefused: redirects.refused - redirects0.refused,
        channels: caller.stub?.peerbroker.pool.endpoints().length,
      });
    };

    const startOne = (closedLoop: boolean) => {
      started++;
      inflight++;
      const began = performance.now();
      caller.call((err, node) => {
        const now = performance.now();
        inflight--;
        const b = Math.max(0, Math.floor((now - t0) / cfg.bucketMs));
        if (err) {
          bump(failedTimeline, b);
          if (inWindow) errors[err] = (errors[err] ?? 0) + 1;
        } else {
          bump((timeline[node] ??= []), b);
          (bucketHist[b] ??= new Histogram()).recordMs(now - began);
          if (inWindow) {
            ok++;
            hist.recordMs(now - began);
            servedBy[node] = (servedBy[node] ?? 0) + 1;
          }
        }
        if (closedLoop && !stopped && started < cfg.maxCalls) startOne(true);
        else if (stopped && inflight === 0) finish();
      });
    };

    setTimeout(
      () => {
        if (cfg.mode.kind === 'closed') {
          for (let i = 0; i < cfg.mode.concurrency; i++) startOne(true);
        } else {
          const { ratePerSec, maxInFlight } = cfg.mode;
          let offered = 0;
          const ticker = setInterval(() => {
            if (stopped) return clearInterval(ticker);
            const due = Math.min(cfg.maxCalls, Math.floor((ratePerSec * (performance.now() - t0)) / 1000));
            while (offered < due) {
              offered++;
              if (inflight >= maxInFlight) {
                if (inWindow) skipped++;
              } else startOne(false);
            }
          }, cfg.mode.tickMs ?? 1);
        }
      },
      Math.max(0, t0 - performance.now()),
    );
    setTimeout(
      () => {
        inWindow = true;
        wStart = performance.now();
        cpuAt0 = process.cpuUsage();
        redirects0 = { followed: stubStats().redirectsFollowed, refused: stubStats().redirectsRefused };
      },
      Math.max(0, t0 + cfg.warmupMs - performance.now()),
    );
    setTimeout(
      () => {
        inWindow = false;
        stopped = true;
        windowMs = performance.now() - wStart;
        const c = process.cpuUsage(cpuAt0);
        cpuMs = (c.user + c.system) / 1000;
        redirects = { followed: stubStats().redirectsFollowed, refused: stubStats().redirectsRefused };
        if (inflight === 0) finish();
        setTimeout(finish, cfg.deadlineMs + DRAIN_GRACE_MS).unref();
      },
      Math.max(0, t0 + cfg.warmupMs + cfg.durationMs - performance.now()),
    );
  });
}

async function main(): Promise<void> {
  // Bounded whatever happens: a generator never outlives its brief by more than a minute.
  setTimeout(() => process.exit(3), cfg.warmupMs + cfg.durationMs + cfg.deadlineMs + 60_000).unref();
  process.on('disconnect', () => process.exit(4));
  const caller = await makeCaller(cfg);
  await warm(caller);
  await send({ type: 'ready' });
  const at = await waitGo();
  const result = await run(caller, at);
  await send({ type: 'result', result });
  await Promise.race([caller.close(), new Promise((r) => setTimeout(r, 1_000))]);
  process.exit(0);
}

main().catch(async (err: Error) => {
  await send({ type: 'failed', message: err.stack ?? String(err) });
  process.exit(1);
});
