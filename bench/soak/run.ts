/**
 * `npm run soak`: one broker alone and a 3-node cluster (CLI processes, a real nats-server,
 * 127.0.0.1) under a mix of every kind of call until `--calls` ended (or `--seconds` passed),
 * sampling each broker's RSS, heap after full GCs, descriptors and running/queued every second.
 * Fails (exit 1, saying why) when RSS, heap or descriptors grow past their slope over the second
 * half of the load, when running/queued do not come back to 0 soon after it, or when calls end
 * in a way their kind may not. Prints a summary and writes it as JSON.
 *
 *   npm run soak                      # 1,000,000 calls (see bench/README.md, "Soak", for the time)
 *   npm run soak -- --seconds 30      # a quick run: 30 s of load, whatever the count
 *   npm run soak -- --calls 200000 --out /tmp/soak
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NatsServer, natsServerBinary } from '../lib/nats';
import { BANK_MODULE, startBroker, startBrokerCluster, stopNodes, type Node } from '../lib/nodes';
import { forkModule, killAllNow, loadAverage as loadAverageNow, sleep, stopChild, type Child } from '../lib/proc';
import type { Counts, FromSoakGenerator, GeneratorBrief, SoakMix, ToSoakGenerator } from './protocol';
import { GC_TRACE_ARGS, Sampler, type Watched } from './sampler';
import { callTable, failures, figuresOf, processTable, unexpected, type Settle, type Thresholds } from './verdict';

const GENERATOR = path.join(__dirname, 'generator.js');
/** Slots of every broker (the CLI's default). */
const CAPACITY = 64;
/** Idle time of the soak's sessions, ms: short, so the abandoned ones expire many times over a run. */
const SESSION_IDLE_MS = 5_000;
const SAMPLE_EVERY_MS = 1_000;
const PROGRESS_EVERY_MS = 10_000;
/** Deadline of every call meant to finish, ms. */
const DEADLINE_MS = 10_000;
/** After the load stops, how long calls in flight get to end, ms. */
const DRAIN_MS = 15_000;
/** Time the generators get to connect and warm up, ms. */
const READY_TIMEOUT_MS = 60_000;
/** With `--seconds` alone, a bound on the calls all the same. */
const MAX_CALLS_BY_TIME = 50_000_000;
/** Start-up and tear-down on top of the load that the watchdog allows, ms. */
const WATCHDOG_SLACK_MS = 3 * 60_000;

/** What fails the run; chosen from clean runs (bench/README.md, "Soak"). */
const THRESHOLDS: Thresholds = { rssSlopeMbPerMin: 15, heapSlopeMbPerMin: 2, fdSlopePerMin: 2, settleMs: 5_000, minSlopeWindowMs: 90_000 };

/**
 * Calls in flight per kind, for each target: the bulk carries the volume, the rest run beside
 * it. The calls that end in a cancel or an expired deadline send RST_STREAMs, which a node's
 * HTTP/2 server allows a connection 33 a second (kinds.ts): about 10/s from the cancel lanes
 * and 9/s from the episodes (10 expired, 10 cancelled in the queue, 16 holds cancelled every 4 s).
 */
const MIX: Record<'solo' | 'cluster', SoakMix> = {
  solo: { plain: 48, follow: 48, streamServer: 2, streamClient: 2, streamBidi: 2, cancel: 2, cancelEveryMs: 200, sessionCommit: 2, sessionAbandon: 2, episodeEveryMs: 4_000, episodeQueued: 20 },
  cluster: { plain: 96, follow: 96, streamServer: 2, streamClient: 2, streamBidi: 2, cancel: 2, cancelEveryMs: 200, sessionCommit: 2, sessionAbandon: 2, episodeEveryMs: 4_000, episodeQueued: 20 },
};

interface Args {
  calls: number;
  seconds: number;
  out: string;
}

function usage(why?: string): never {
  if (why) process.stderr.write(`soak: ${why}\n`);
  process.stderr.write('usage: npm run soak -- [--calls N] [--seconds S] [--out DIR]\n');
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  let calls: number | undefined;
  let seconds: number | undefined;
  let out = os.tmpdir();
  for (let i = 0; i < argv.length; i++) {
    const next = () => argv[++i] ?? usage(`'${argv[i - 1]}' needs a value`);
    const a = argv[i];
    if (a === '--calls') calls = Number(next());
    else if (a === '--seconds') seconds = Number(next());
    else if (a === '--out') out = path.resolve(next());
    else if (a === '--help' || a === '-h') usage();
    else usage(`unknown argument '${a}'`);
  }
  if (calls !== undefined && !(Number.isInteger(calls) && calls > 0)) usage("'--calls' must be a positive integer");
  if (seconds !== undefined && !(seconds >= 5 && seconds <= 3_600)) usage("'--seconds' must be 5..3600");
  // --seconds alone is a run of that length; otherwise the run lasts until the calls are made.
  return { calls: calls ?? (seconds !== undefined ? Number.POSITIVE_INFINITY : 1_000_000), seconds: seconds ?? 1_800, out };
}

/** A generator process and what it said. */
interface Gen {
  name: string;
  child: Child;
  calls: number;
  result?: Extract<FromSoakGenerator, { type: 'result' }>;
  error?: string;
  ready: Promise<void>;
  done: Promise<void>;
}

function forkGenerator(name: string, brief: GeneratorBrief): Gen {
  const child = forkModule(`soak generator ${name}`, GENERATOR, [JSON.stringify(brief)]);
  const g = { name, child, calls: 0 } as Gen;
  g.ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${child.name}: not ready within ${READY_TIMEOUT_MS} ms:\n${child.lines.join('\n')}`)), READY_TIMEOUT_MS);
    child.proc.on('message', (m: FromSoakGenerator) => m.type === 'ready' && (clearTimeout(timer), resolve()));
  });
  g.done = new Promise((resolve) => {
    const end = (error?: string) => {
      if (!g.result && !g.error && error) g.error = error;
      resolve();
    };
    child.proc.on('message', (m: FromSoakGenerator) => {
      if (m.type === 'progress') g.calls = m.calls;
      else if (m.type === 'result') {
        g.result = m;
        end();
      } else if (m.type === 'failed') end(`${child.name} failed: ${m.message}`);
    });
    // The result comes just before the exit; give the IPC message a moment to arrive first.
    void child.exited.then(() => setTimeout(() => end(`${child.name} exited without a result:\n${child.lines.join('\n')}`), 200));
  });
  return g;
}

/** Polls every broker until it says 0 running and 0 queued (a report sent after `sinceEpochMs`), or `timeoutMs` passes. */
async function settle(sampler: Sampler, brokers: string[], sinceEpochMs: number, timeoutMs: number): Promise<Settle> {
  const t0 = performance.now();
  for (;;) {
    const last: Settle['last'] = {};
    for (const b of brokers) {
      const r = sampler.report(b);
      last[b] = { inFlight: (await sampler.status(b))?.self?.inFlight ?? NaN, queued: r && r.sentAtMs >= sinceEpochMs ? r.queued : NaN };
    }
    const ok = Object.values(last).every((v) => v.inFlight === 0 && v.queued === 0);
    const afterMs = performance.now() - t0;
    if (ok || afterMs > timeoutMs) return { ok, afterMs, last };
    await sleep(100);
  }
}

function sessionConfig(dir: string): string {
  const file = path.join(dir, 'soak-node.yaml');
  fs.writeFileSync(
    file,
    [
      '# The bank example declares its sessions in its .proto (60 s idle); the soak wants them to expire within the run.',
      'sessions:',
      '  - enter: bank.Banking/BeginTransaction',
      "    within: 'bank.Banking/*'",
      '    exit: [bank.Banking/Commit, bank.Banking/Abort]',
      `    idleMs: ${SESSION_IDLE_MS}`,
      '',
    ].join('\n'),
  );
  return file;
}

/** When the load ran, on the sampler's clock (ms), and when the generators' calls had ended. */
interface LoadSpan {
  startMs: number;
  stopMs: number;
  endedMs: number;
  loadAverage: [number, number, number];
}

/** Starts the generators' load, prints progress, and stops it when the calls are made or the time is up. */
async function driveLoad(gens: Gen[], sampler: Sampler, brokers: string[], args: Args): Promise<LoadSpan> {
  sampler.resetMaxQueued();
  const startMs = sampler.now();
  const loadAverage = loadAverageNow();
  const target = Number.isFinite(args.calls) ? args.calls.toLocaleString('en-US') : 'none';
  process.stdout.write(`soak: load starts (target ${target} calls, at most ${args.seconds} s; load average ${loadAverage[0]})\n`);
  for (const g of gens) g.child.proc.send({ type: 'go' } satisfies ToSoakGenerator);
  const total = () => gens.reduce((a, g) => a + g.calls, 0);
  let lastPrint = 0;
  // Each generator also stops by itself (its time, its count); one that ends early ends the load.
  while (gens.every((g) => !g.result && !g.error)) {
    const el = sampler.now() - startMs;
    if (total() >= args.calls || el >= args.seconds * 1_000) break;
    if (el - lastPrint >= PROGRESS_EVERY_MS) {
      lastPrint = el;
      const rss = brokers.map((b) => `${b} ${sampler.samples[b].at(-1)?.rssMb.toFixed(0)} MB`).join(', ');
      process.stdout.write(`  ${(el / 1000).toFixed(0)} s: ${total().toLocaleString('en-US')} calls (${Math.round(total() / (el / 1000 || 1))}/s); ${rss}\n`);
    }
    await sleep(200);
  }
  for (const g of gens) if (!g.child.exitedNow) g.child.proc.send({ type: 'stop' } satisfies ToSoakGenerator);
  const stopMs = sampler.now();
  await Promise.race([Promise.all(gens.map((g) => g.done)), sleep(DRAIN_MS + 10_000)]);
  return { startMs, stopMs, endedMs: sampler.now(), loadAverage };
}

/** The summary as printed, and as written to JSON. */
function summarize(gens: Gen[], watched: Watched[], sampler: Sampler, span: LoadSpan, settled: Settle, statuses: Record<string, BrokerCounters>, runS: number) {
  const counts: Record<string, Counts> = Object.fromEntries(gens.map((g) => [g.name, g.result?.counts ?? {}]));
  const details = Object.fromEntries(gens.map((g) => [g.name, g.result?.details ?? {}]));
  const { lines, total: calls } = callTable(counts);
  const heapOf = (w: Watched) => w.broker && { heap: sampler.heap[w.name], maxQueued: sampler.maxQueued[w.name] ?? 0 };
  const figs = watched.map((w) => figuresOf(w.name, sampler.samples[w.name], span.startMs, span.stopMs, heapOf(w)));
  const unfinished = gens.reduce((a, g) => a + (g.result?.unfinished ?? 0), 0);
  const generatorErrors = gens.filter((g) => g.error || !g.result).map((g) => g.error ?? `generator ${g.name} sent no result within the drain`);
  const halfMs = (span.stopMs - span.startMs) / 2;
  const fails = failures(figs, settled, THRESHOLDS, unfinished, [...generatorErrors, ...unexpected(counts, details)], halfMs);
  const judged = halfMs >= THRESHOLDS.minSlopeWindowMs;
  const loadS = (span.stopMs - span.startMs) / 1000;
  const t = THRESHOLDS;
  const text = [
    `soak: ${calls.toLocaleString('en-US')} calls in ${loadS.toFixed(0)} s of load (${Math.round(calls / loadS).toLocaleString('en-US')}/s); ` +
      `calls in flight ended ${((span.endedMs - span.stopMs) / 1000).toFixed(1)} s after the stop; ` +
      `running/queued 0 on every broker ${(settled.afterMs / 1000).toFixed(1)} s after that; whole run ${runS.toFixed(0)} s; load average at the start ${span.loadAverage.join(' ')}`,
    'calls by target, kind and outcome:',
    ...lines,
    `processes (over the second half of the load; limits: RSS ${t.rssSlopeMbPerMin} MB/min by least squares, heap after full GC ${t.heapSlopeMbPerMin} MB/min by Theil-Sen, ` +
      `${t.fdSlopePerMin} fds/min by least squares` +
      (judged ? '):' : `; not judged: a second half under ${t.minSlopeWindowMs / 1000} s is warm-up):`),
    ...processTable(figs, t, judged),
    'broker counters (Status): ' + Object.entries(statuses).map(([b, s]) => `${b} run ${s.run}, redirected ${s.redirected}, rejected ${s.rejected}`).join('; '),
    fails.length ? `FAIL:\n${fails.map((f) => `  - ${f}`).join('\n')}` : 'PASS',
  ].join('\n');
  const json = {
    thresholds: t,
    mix: MIX,
    capacity: CAPACITY,
    sessionIdleMs: SESSION_IDLE_MS,
    loadAverageAtStart: span.loadAverage,
    machine: { cpus: os.cpus().length, node: process.version },
    loadSeconds: loadS,
    drainSeconds: (span.endedMs - span.stopMs) / 1000,
    runSeconds: runS,
    stoppedBy: gens.map((g) => `${g.name}: ${g.result?.stoppedBy ?? 'none'}`),
    calls,
    counts,
    details,
    unfinished,
    settle: settled,
    processes: figs,
    brokerCounters: statuses,
    failures: fails,
    samples: sampler.samples,
    heapAfterFullGc: sampler.heap,
  };
  return { text, json, failed: fails.length > 0 };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const watchdogMs = args.seconds * 1_000 + WATCHDOG_SLACK_MS;
  // Not unref'd: whatever hangs, the run ends with this message rather than silently.
  const watchdog = setTimeout(() => {
    process.stderr.write(`soak: watchdog: still running after ${watchdogMs / 1000} s; stopping everything\n`);
    killAllNow();
    process.exit(1);
  }, watchdogMs);
  const startedAt = new Date();
  const t0 = performance.now();
  natsServerBinary();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'peerbroker-soak-'));
  const nodes: Node[] = [];
  const gens: Gen[] = [];
  let nats: NatsServer | undefined;
  let sampler: Sampler | undefined;
  try {
    nats = await NatsServer.start('soak');
    const config = sessionConfig(tmp);
    const base = { nats: [nats.url], capacity: CAPACITY, workMs: 0, module: BANK_MODULE, nodeArgs: GC_TRACE_ARGS };
    const solo = await startBroker({ ...base, id: 's1', cluster: 'soak-solo', extraArgs: ['--config', config] });
    nodes.push(solo);
    const cluster = await startBrokerCluster(3, { ...base, cluster: 'soak', extraArgs: ['--config', config, '--forward-legacy'] });
    nodes.push(...cluster);
    const brief = (name: 'solo' | 'cluster', ns: Node[]): GeneratorBrief => ({
      target: { name, endpoints: ns.map((n) => n.endpoint), capacity: CAPACITY },
      mix: MIX[name],
      maxMs: args.seconds * 1_000,
      maxCalls: Number.isFinite(args.calls) ? args.calls : MAX_CALLS_BY_TIME,
      deadlineMs: DEADLINE_MS,
      drainMs: DRAIN_MS,
    });
    gens.push(forkGenerator('solo', brief('solo', [solo])), forkGenerator('cluster', brief('cluster', cluster)));
    await Promise.all(gens.map((g) => g.ready));

    const asBroker = (n: Node, name: string, clusterName: string): Watched => ({
      name,
      pid: n.child.pid,
      broker: { endpoint: n.endpoint, cluster: clusterName, nodeId: n.id, child: n.child },
    });
    const watched: Watched[] = [
      asBroker(solo, 'solo/s1', 'soak-solo'),
      ...cluster.map((n) => asBroker(n, `cluster/${n.id}`, 'soak')),
      { name: 'nats-server', pid: nats.pid },
      ...gens.map((g) => ({ name: `generator/${g.name}`, pid: g.child.pid })),
    ];
    const brokers = watched.filter((w) => w.broker).map((w) => w.name);
    sampler = new Sampler(watched, nats.url);
    await sampler.start(SAMPLE_EVERY_MS);
    await sleep(2 * SAMPLE_EVERY_MS); // samples from before the load: the "start" figures
    const span = await driveLoad(gens, sampler, brokers, args);
    const settled = await settle(sampler, brokers, Date.now(), THRESHOLDS.settleMs);
    await sleep(2 * SAMPLE_EVERY_MS); // a last sample or two after the load, for the "after" figures
    const statuses = Object.fromEntries(await Promise.all(brokers.map(async (b) => [b, await statusCounters(sampler!, b)] as const)));
    await sampler.stop();

    const { text, json, failed } = summarize(gens, watched, sampler, span, settled, statuses, (performance.now() - t0) / 1000);
    process.stdout.write(text + '\n');
    fs.mkdirSync(args.out, { recursive: true });
    const file = path.join(args.out, `peerbroker-soak-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    const { calls: target, ...rest } = args;
    fs.writeFileSync(file, JSON.stringify({ startedAt: startedAt.toISOString(), args: { ...rest, calls: Number.isFinite(target) ? target : null }, ...json }, null, 1));
    process.stdout.write(`summary written to ${file}\n`);
    process.exitCode = failed ? 1 : 0;
  } finally {
    await sampler?.stop();
    await Promise.all(gens.map((g) => stopChild(g.child, 'SIGKILL')));
    await stopNodes(nodes);
    await nats?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
    clearTimeout(watchdog);
  }
}

/** A broker's call counters, as its `Status` answer gives them. */
interface BrokerCounters {
  run: string;
  redirected: string;
  rejected: string;
}

/** A broker's call counters from its `Status` answer ('?' when it does not answer). */
async function statusCounters(sampler: Sampler, name: string): Promise<BrokerCounters> {
  const s = await sampler.status(name);
  return { run: String(s?.callsRun ?? '?'), redirected: String(s?.callsRedirected ?? '?'), rejected: String(s?.callsRejected ?? '?') };
}

main().catch((err: Error) => {
  process.stderr.write(`soak: ${err.stack ?? String(err)}\n`);
  killAllNow();
  process.exit(1);
});
