/**
 * A load generator process: offers calls to one target as its brief says, bounded in
 * count and time, and sends back what it measured. Started by the bench with fork().
 * With `threads`, the brief runs in that many worker threads (each its share of the rate)
 * and the process sends back one result per thread.
 *
 *   node dist/bench/load/loadgen.js '<LoadConfig as JSON>'
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { makeCaller, type Caller } from './callers';
import { drive } from './driver';
import type { FromGenerator, LoadConfig, LoadResult, ToGenerator } from './protocol';

/** Calls made before `ready`, so every channel and connection is warm. */
const WARM_CALLS = 10;
/** Calls of the warm-up in flight at once. */
const WARM_CONCURRENCY = 4;

/** What the process gives each worker thread. */
interface WorkerBrief {
  cfg: LoadConfig;
  /** Calls in flight per endpoint, shared by every thread (jsq). */
  inFlight: SharedArrayBuffer;
}
/** Worker → process. */
type FromWorker = { type: 'ready' } | { type: 'result'; result: LoadResult } | { type: 'failed'; message: string };

function send(msg: FromGenerator): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

async function warm(caller: Caller): Promise<void> {
  let left = Math.max(WARM_CALLS, 3 * caller.warmTargets);
  const lane = async () => {
    while (left-- > 0) await new Promise<void>((r) => caller.call(() => r()));
  };
  await Promise.all(Array.from({ length: WARM_CONCURRENCY }, lane));
}

function waitGo(): Promise<number> {
  return new Promise((resolve) => {
    process.on('message', (m: ToGenerator) => {
      if (m.type === 'go') resolve(m.atEpochMs);
    });
  });
}

/** The brief of thread `i` of `n`: its share of the rate or of the calls in flight, its own seed. */
function threadBrief(cfg: LoadConfig, i: number, n: number): LoadConfig {
  const share = (x: number) => x / n;
  const mode = cfg.mode;
  const m =
    mode.kind === 'closed'
      ? { ...mode, concurrency: Math.max(1, Math.round(share(mode.concurrency))) }
      : mode.kind === 'open'
        ? { ...mode, ratePerSec: share(mode.ratePerSec), maxInFlight: Math.ceil(share(mode.maxInFlight)) }
        : { ...mode, ratePerSec: share(mode.ratePerSec), maxInFlight: Math.ceil(share(mode.maxInFlight)), seed: mode.seed + 7919 * i };
  return { ...cfg, id: `${cfg.id}.t${i}`, mode: m, maxCalls: Math.ceil(share(cfg.maxCalls)) + 10, threads: undefined };
}

/** Runs the brief in `cfg.threads` worker threads; measures the process's CPU in the window. */
async function runThreads(cfg: LoadConfig): Promise<void> {
  const n = cfg.threads!;
  const endpoints = 'endpoints' in cfg.target ? cfg.target.endpoints.length : 1;
  const inFlight = new SharedArrayBuffer(4 * endpoints);
  const workers = Array.from({ length: n }, (_, i) => new Worker(__filename, { workerData: { cfg: threadBrief(cfg, i, n), inFlight } satisfies WorkerBrief }));
  const next = (w: Worker, type: 'ready' | 'result') =>
    new Promise<LoadResult | undefined>((resolve, reject) => {
      const on = (m: FromWorker) => {
        if (m.type === 'failed') reject(new Error(m.message));
        else if (m.type === type) {
          w.off('message', on);
          resolve(m.type === 'result' ? m.result : undefined);
        }
      };
      w.on('message', on);
      w.once('error', reject);
    });
  await Promise.all(workers.map((w) => next(w, 'ready')));
  await send({ type: 'ready' });
  const at = await waitGo();
  const results = workers.map((w) => next(w, 'result'));
  for (const w of workers) w.postMessage({ type: 'go', atEpochMs: at } satisfies ToGenerator);
  // The process's CPU (every thread) over the window, as one generator's.
  const t0 = performance.now() + (at - Date.now());
  let cpu0 = process.cpuUsage();
  setTimeout(() => (cpu0 = process.cpuUsage()), Math.max(0, t0 + cfg.warmupMs - performance.now()));
  const windowCpuMs = new Promise<number>((resolve) =>
    setTimeout(
      () => {
        const c = process.cpuUsage(cpu0);
        resolve((c.user + c.system) / 1000);
      },
      Math.max(0, t0 + cfg.warmupMs + cfg.durationMs - performance.now()),
    ),
  );
  // A thread with nothing in flight answers as its window ends, maybe before this timer fires.
  const [parts, cpuMs] = (await Promise.all([Promise.all(results), windowCpuMs])) as [LoadResult[], number];
  // process.cpuUsage() is the whole process's in every thread: it is counted once, on the first part.
  parts.forEach((p, i) => (p.cpuMs = i === 0 ? cpuMs : 0));
  await send({ type: 'result', result: parts });
  await Promise.race([Promise.all(workers.map((w) => w.terminate())), new Promise((r) => setTimeout(r, 1_000))]);
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
  // Bounded whatever happens: a generator never outlives its brief by more than a minute.
  setTimeout(() => process.exit(3), cfg.warmupMs + cfg.durationMs + cfg.deadlineMs + 60_000).unref();
  process.on('disconnect', () => process.exit(4));
  if (cfg.threads) {
    await runThreads(cfg);
    process.exit(0);
  }
  const caller = await makeCaller(cfg);
  await warm(caller);
  await send({ type: 'ready' });
  const at = await waitGo();
  const result = await drive(caller, cfg, at);
  await send({ type: 'result', result });
  await Promise.race([caller.close(), new Promise((r) => setTimeout(r, 1_000))]);
  process.exit(0);
}

/** A worker thread: one share of the brief, on its own event loop and its own channels. */
async function workerMain(): Promise<void> {
  const { cfg, inFlight } = workerData as WorkerBrief;
  const post = (m: FromWorker) => parentPort!.postMessage(m);
  try {
    const caller = await makeCaller(cfg, new Int32Array(inFlight));
    await warm(caller);
    const go = new Promise<number>((resolve) => parentPort!.once('message', (m: ToGenerator) => resolve(m.atEpochMs)));
    post({ type: 'ready' });
    post({ type: 'result', result: await drive(caller, cfg, await go) });
    await Promise.race([caller.close(), new Promise((r) => setTimeout(r, 1_000))]);
  } catch (err) {
    post({ type: 'failed', message: (err as Error).stack ?? String(err) });
  }
}

if (isMainThread) {
  main().catch(async (err: Error) => {
    await send({ type: 'failed', message: err.stack ?? String(err) });
    process.exit(1);
  });
} else void workerMain();
