import * as path from 'node:path';
import type { FromGenerator, LoadConfig, LoadResult, ToGenerator } from '../load/protocol';
import { Histogram } from './histogram';
import { CpuWindow, forkModule, machineBusyMs, stopChild, waitQuiet, type Child } from './proc';

const LOADGEN = path.join(__dirname, '..', 'load', 'loadgen.js');
/** Time generators get to connect and warm up. */
const READY_TIMEOUT_MS = 30_000;
/** Lead time between `go` and the first call, so every generator starts together. */
const GO_LEAD_MS = 150;

/** Something the scenario does at a fixed time after `go` (e.g. stop the NATS servers). */
export interface TimedEvent {
  atMs: number;
  run(): Promise<void>;
}

/** What a load run measured: the generators' results and the servers' CPU in the window. */
export interface LoadRun {
  results: LoadResult[];
  /** CPU ms of each watched server process in the window, by name. */
  serverCpuMs: Record<string, number>;
  /** Wall ms of the server CPU window. */
  windowMs: number;
  /** When each timed event actually ran, ms after `go`. */
  eventsAtMs: number[];
  /**
   * CPU used in the window by everything but the bench's generators and watched servers,
   * in cores (other people's work on a shared machine, and unwatched bench processes).
   */
  otherCores: number;
  /** Cores busy with other work just before the run (after waiting for quiet). */
  busyBefore: number;
  /** Measurements taken (more than one when other work disturbed the first). */
  attempts: number;
}

/**
 * How long a run waits for the machine to be quiet first (set by the runner): at most
 * `maxWaitMs` per run, and `budgetMs` over the whole bench.
 */
export const quietGate = { maxWaitMs: 0, budgetMs: 0 };

/**
 * A measurement during which other work took more than `maxOtherCores` is taken again,
 * at most `perRun` more times and `budget` more times over the whole bench (set by the
 * runner); the least disturbed attempt is kept.
 */
export const noiseRetry = { maxOtherCores: 0.5, perRun: 0, budget: 0, used: 0 };

/**
 * `runOnce`, repeated while other work on the machine disturbed it (see `noiseRetry`).
 * Runs with timed events (which change the system under test) are never repeated.
 */
export async function runLoad(configs: LoadConfig[], watch: Child[] = [], events: TimedEvent[] = []): Promise<LoadRun> {
  let best = await runOnce(configs, watch, events);
  for (let i = 0; i < noiseRetry.perRun && events.length === 0 && best.otherCores > noiseRetry.maxOtherCores && noiseRetry.budget > 0; i++) {
    noiseRetry.budget--;
    noiseRetry.used++;
    const again = await runOnce(configs, watch, events);
    again.attempts = best.attempts + 1;
    if (again.otherCores < best.otherCores) best = again;
    else best.attempts = again.attempts;
  }
  return best;
}

/**
 * Starts one generator process per config, waits until all are warm, starts them
 * together and collects their results. `watch` are server processes whose CPU is
 * read from /proc over the measured window. Every config must share warm-up and duration.
 */
async function runOnce(configs: LoadConfig[], watch: Child[], events: TimedEvent[]): Promise<LoadRun> {
  const { warmupMs, durationMs } = configs[0];
  const maxDeadline = Math.max(...configs.map((c) => c.deadlineMs));
  let busyBefore = NaN;
  const wait = Math.min(quietGate.maxWaitMs, quietGate.budgetMs);
  if (wait > 0) {
    const w0 = Date.now();
    busyBefore = await waitQuiet(wait);
    quietGate.budgetMs -= Math.max(0, Date.now() - w0 - 500);
  }
  const gens = configs.map((c) => forkModule(`loadgen ${c.id}`, LOADGEN, [JSON.stringify(c)]));
  const results: LoadResult[] = [];
  try {
    const ready = gens.map((g) => expect(g, 'ready', READY_TIMEOUT_MS));
    await Promise.all(ready);
    const done = gens.map((g) => expect(g, 'result', GO_LEAD_MS + warmupMs + durationMs + maxDeadline + 20_000));
    const at = Date.now() + GO_LEAD_MS;
    for (const g of gens) g.proc.send({ type: 'go', atEpochMs: at } satisfies ToGenerator);
    const cpu = new CpuWindow(watch.map((w) => w.pid));
    let cpuResult: ReturnType<CpuWindow['stop']> | undefined;
    let busy0 = 0;
    let busyMs = 0;
    const t0 = performance.now() + GO_LEAD_MS;
    setTimeout(() => {
      cpu.start();
      busy0 = machineBusyMs();
    }, Math.max(0, t0 + warmupMs - performance.now()));
    const windowDone = new Promise<void>((resolve) =>
      setTimeout(
        () => {
          cpuResult = cpu.stop();
          busyMs = machineBusyMs() - busy0;
          resolve();
        },
        Math.max(0, t0 + warmupMs + durationMs - performance.now()),
      ),
    );
    const eventsAtMs: number[] = [];
    const eventsDone = Promise.all(
      events.map(
        (e, i) =>
          new Promise<void>((resolve, reject) =>
            setTimeout(
              () => {
                eventsAtMs[i] = performance.now() - t0;
                e.run().then(resolve, reject);
              },
              Math.max(0, t0 + e.atMs - performance.now()),
            ),
          ),
      ),
    );
    for (const r of await Promise.all(done)) results.push(...[r as LoadResult | LoadResult[]].flat());
    await windowDone;
    await eventsDone;
    const serverCpuMs: Record<string, number> = {};
    watch.forEach((w) => (serverCpuMs[w.name] = cpuResult!.cpu.get(w.pid) ?? NaN));
    const ours = results.reduce((a, r) => a + r.cpuMs, 0) + Object.values(serverCpuMs).reduce((a, b) => a + (b || 0), 0);
    const otherCores = Math.max(0, busyMs - ours) / cpuResult!.wallMs;
    return { results, serverCpuMs, windowMs: cpuResult!.wallMs, eventsAtMs, otherCores, busyBefore, attempts: 1 };
  } finally {
    await Promise.all(gens.map((g) => stopChild(g, 'SIGKILL')));
  }
}

function expect(g: Child, type: 'ready' | 'result', timeoutMs: number): Promise<LoadResult | LoadResult[] | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${g.name}: no '${type}' within ${timeoutMs} ms:\n${g.lines.join('\n')}`)), timeoutMs);
    const onMessage = (m: FromGenerator) => {
      if (m.type === 'failed') {
        clearTimeout(timer);
        reject(new Error(`${g.name} failed: ${m.message}`));
      } else if (m.type === type) {
        clearTimeout(timer);
        g.proc.off('message', onMessage);
        resolve(m.type === 'result' ? m.result : undefined);
      }
    };
    g.proc.on('message', onMessage);
    void g.exited.then(() =>
      setTimeout(() => {
        clearTimeout(timer);
        reject(new Error(`${g.name} exited before '${type}':\n${g.lines.join('\n')}`));
      }, 100),
    );
  });
}

/** The figures of several generators taken together. */
export interface Summary {
  /** OK calls per second in the window. */
  throughput: number;
  p50: number;
  p99: number;
  p999: number;
  /** Failed calls per second in the window, and by error name. */
  errorsPerSec: number;
  errors: Record<string, number>;
  /** Status details of failed calls, the first few of each error name. */
  errorDetails: Record<string, string[]>;
  /** Calls skipped (open loop at its in-flight bound) per second. */
  skippedPerSec: number;
  /** OK calls in the window by node. */
  servedBy: Record<string, number>;
  /** CPU of the generators, ms, and their number. */
  clientCpuMs: number;
  generators: number;
  /** Stub: redirects followed per OK call. */
  redirectsPerCall: number;
  redirectsRefused: number;
  /** Stub: most channels any generator's stub opened. */
  channels: number;
  /** Per node: OK calls per second in each bucket. */
  timeline: Record<string, number[]>;
  /** Failed calls per second in each bucket. */
  failedTimeline: number[];
  okCalls: number;
  windowMs: number;
}

/** Adds up the generators' results. */
export function summarize(results: LoadResult[], bucketMs: number): Summary {
  const hist = Histogram.from(...results.map((r) => r.latency));
  const windowMs = Math.max(...results.map((r) => r.windowMs));
  const ok = results.reduce((a, r) => a + r.okInWindow, 0);
  const errors: Record<string, number> = {};
  const servedBy: Record<string, number> = {};
  const timeline: Record<string, number[]> = {};
  const failedTimeline: number[] = [];
  const perSec = 1000 / bucketMs;
  const errorDetails: Record<string, string[]> = {};
  for (const r of results) {
    for (const [k, v] of Object.entries(r.errorsInWindow)) errors[k] = (errors[k] ?? 0) + v;
    for (const [k, v] of Object.entries(r.errorDetails ?? {})) errorDetails[k] = [...new Set([...(errorDetails[k] ?? []), ...v])].slice(0, 3);
    for (const [k, v] of Object.entries(r.servedBy)) servedBy[k] = (servedBy[k] ?? 0) + v;
    for (const [node, counts] of Object.entries(r.timeline)) {
      const t = (timeline[node] ??= []);
      counts.forEach((c, i) => (t[i] = (t[i] ?? 0) + c * perSec));
    }
    r.failedTimeline.forEach((c, i) => (failedTimeline[i] = (failedTimeline[i] ?? 0) + c * perSec));
  }
  const len = Math.max(failedTimeline.length, ...Object.values(timeline).map((t) => t.length));
  for (const t of [...Object.values(timeline), failedTimeline]) for (let i = 0; i < len; i++) t[i] ??= 0;
  const nErr = Object.values(errors).reduce((a, b) => a + b, 0);
  const s = windowMs / 1000;
  return {
    throughput: ok / s,
    p50: hist.percentileMs(50),
    p99: hist.percentileMs(99),
    p999: hist.percentileMs(99.9),
    errorsPerSec: nErr / s,
    errors,
    errorDetails,
    skippedPerSec: results.reduce((a, r) => a + r.skipped, 0) / s,
    servedBy,
    clientCpuMs: results.reduce((a, r) => a + r.cpuMs, 0),
    generators: results.length,
    redirectsPerCall: ok > 0 ? results.reduce((a, r) => a + (r.redirectsFollowed ?? 0), 0) / ok : 0,
    redirectsRefused: results.reduce((a, r) => a + (r.redirectsRefused ?? 0), 0),
    channels: Math.max(0, ...results.map((r) => r.channels ?? 0)),
    timeline,
    failedTimeline,
    okCalls: ok,
    windowMs,
  };
}

/** Splits `total` calls in flight (or calls per second) over `n` generators. */
export function split(total: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Math.floor(total / n) + (i < total % n ? 1 : 0));
  return out.filter((x) => x > 0);
}
