/**
 * A load generator for HTTP/JSON calls: Node's own `fetch`, which follows a 307 by itself.
 * Offers calls at a fixed rate (open loop) and measures each call's latency from the time
 * it was due, not from when the timer got to it, so a generator or server that falls
 * behind shows as latency. Same protocol as loadgen.ts; forked by runLoad when a
 * LoadConfig names this module.
 *
 *   node dist/bench/load/http-loadgen.js '<LoadConfig as JSON>'
 */
import * as http from 'node:http';
import { Histogram } from '../lib/histogram';
import type { FromGenerator, LoadConfig, LoadResult, ToGenerator } from './protocol';

const WARM_CALLS = 20;
const DRAIN_GRACE_MS = 1_000;
const cfg = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;

function send(msg: FromGenerator): Promise<void> {
  return new Promise((resolve) => (process.send ? process.send(msg, undefined, {}, () => resolve()) : resolve()));
}

const BODY = '{"symbol":"ACME"}';
const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

type Answer = { servedBy: string; redirected: boolean };

/** One call on the keep-alive agent: the least a Node client spends on an HTTP call. */
function agentCall(url: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, timeout: cfg.deadlineMs, headers: { 'content-type': 'application/json', 'content-length': BODY.length } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const body = JSON.parse(text) as { servedBy?: string; code?: string };
        if (res.statusCode !== 200) reject(new Error(`http:${res.statusCode}:${body.code ?? ''}`));
        else resolve({ servedBy: body.servedBy ?? '?', redirected: false });
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { name: 'TimeoutError' })));
    req.on('error', reject);
    req.end(BODY);
  });
}

/** One call: resolves with the node that answered and whether fetch followed a redirect. */
async function call(): Promise<Answer> {
  if (cfg.target.kind !== 'http') throw new Error(`http-loadgen: target '${cfg.target.kind}' is not http`);
  if (cfg.target.client === 'agent') return agentCall(cfg.target.url);
  const res = await fetch(cfg.target.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
    signal: AbortSignal.timeout(cfg.deadlineMs),
  });
  const body = (await res.json()) as { servedBy?: string; code?: string };
  if (res.status !== 200) throw new Error(`http:${res.status}:${body.code ?? ''}`);
  return { servedBy: body.servedBy ?? '?', redirected: res.redirected };
}

function run(atEpochMs: number): Promise<LoadResult> {
  if (cfg.mode.kind !== 'open') throw new Error('http-loadgen: only open-loop mode (a fixed rate)');
  const { ratePerSec, maxInFlight, tickMs } = cfg.mode;
  const t0 = performance.now() + (atEpochMs - Date.now());
  const hist = new Histogram();
  const timeline: Record<string, number[]> = {};
  const failedTimeline: number[] = [];
  const servedBy: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const r = { started: 0, skipped: 0, ok: 0, inflight: 0, redirects: 0, cpuMs: 0, windowMs: 0 };
  let inWindow = false;
  let stopped = false;
  let cpu0 = process.cpuUsage();
  let w0 = 0;
  const bump = (arr: number[], i: number) => {
    while (arr.length <= i) arr.push(0);
    arr[i]++;
  };
  return new Promise((resolve) => {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      resolve({
        id: cfg.id, started: r.started, skipped: r.skipped, okInWindow: r.ok, errorsInWindow: errors, latency: hist.toData(), servedBy, timeline,
        failedTimeline, bucketLatency: [], cpuMs: r.cpuMs, windowMs: r.windowMs, redirectsFollowed: r.redirects,
      });
    };
    const start = (dueAt: number) => {
      r.started++;
      r.inflight++;
      const counted = inWindow;
      call().then(
        (a) => {
          const now = performance.now();
          bump((timeline[a.servedBy] ??= []), Math.max(0, Math.floor((now - t0) / cfg.bucketMs)));
          if (counted && inWindow) {
            r.ok++;
            hist.recordMs(now - dueAt);
            servedBy[a.servedBy] = (servedBy[a.servedBy] ?? 0) + 1;
            if (a.redirected) r.redirects++;
          }
        },
        (err: Error) => {
          bump(failedTimeline, Math.max(0, Math.floor((performance.now() - t0) / cfg.bucketMs)));
          if (inWindow) errors[err.name === 'TimeoutError' ? 'timeout' : err.message] = (errors[err.message] ?? 0) + 1;
        },
      ).finally(() => {
        r.inflight--;
        if (stopped && r.inflight === 0) finish();
      });
    };
    let offered = 0;
    const ticker = setInterval(() => {
      if (stopped) return clearInterval(ticker);
      const due = Math.min(cfg.maxCalls, Math.floor((ratePerSec * (performance.now() - t0)) / 1000));
      while (offered < due) {
        // The call was due at this time, whenever the timer runs: latency counts from here.
        const dueAt = t0 + (offered * 1000) / ratePerSec;
        offered++;
        if (r.inflight >= maxInFlight) {
          if (inWindow) r.skipped++;
        } else start(dueAt);
      }
    }, tickMs ?? 1);
    setTimeout(() => {
      inWindow = true;
      w0 = performance.now();
      cpu0 = process.cpuUsage();
    }, Math.max(0, t0 + cfg.warmupMs - performance.now()));
    setTimeout(() => {
      inWindow = false;
      stopped = true;
      r.windowMs = performance.now() - w0;
      const c = process.cpuUsage(cpu0);
      r.cpuMs = (c.user + c.system) / 1000;
      if (r.inflight === 0) finish();
      setTimeout(finish, cfg.deadlineMs + DRAIN_GRACE_MS).unref();
    }, Math.max(0, t0 + cfg.warmupMs + cfg.durationMs - performance.now()));
  });
}

async function main(): Promise<void> {
  // Bounded whatever happens: a generator never outlives its brief by more than a minute.
  setTimeout(() => process.exit(3), cfg.warmupMs + cfg.durationMs + cfg.deadlineMs + 60_000).unref();
  process.on('disconnect', () => process.exit(4));
  for (let i = 0; i < WARM_CALLS; i++) await call();
  await send({ type: 'ready' });
  const at = await new Promise<number>((resolve) => process.on('message', (m: ToGenerator) => m.type === 'go' && resolve(m.atEpochMs)));
  await send({ type: 'result', result: await run(at) });
  agent.destroy();
  process.exit(0);
}

main().catch(async (err: Error) => {
  await send({ type: 'failed', message: err.stack ?? String(err) });
  process.exit(1);
});
