/**
 * `npm run soak`: one broker alone and a 3-node cluster (CLI processes, a real nats-server,
 * 127.0.0.1) under a mix of every kind of call until `--calls` ended (or `--seconds` passed),
 * sampling each broker's RSS, descriptors and running/queued every second. Fails (exit 1,
 * saying why) when RSS or descriptors grow past their slope over the second half of the load,
 * or when running/queued do not come back to 0 soon after it. Writes the summary as JSON.
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
import { forkModule, killAllNow, loadAverage, sleep, stopChild, type Child } from '../lib/proc';
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
    child.proc.on('message', (m: FromSoakGenerator) => {
      if (m.type === 'progress') g.calls = m.calls;
      else if (m.type === 'result') (g.result = m), resolve();
      else if (m.type === 'failed') (g.error = `${child.name} failed: ${m.message}`), resolve();
    });
    void child.exited.then(() => setTimeout(() => (g.result || g.error ? undefined : ((g.error = `${child.name} exited without a result:\n${child.lines.join('\n')}`), resolve())), 200));
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

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const watchdogMs = args.seconds * 1_000 + WATCHDOG_SLACK_MS;
  setTimeout(() => {
    process.stderr.write(`soak: watchdog: still running after ${watchdogMs / 1000} s; stopping everything\n`);
    killAllNow();
    process.exit(1);
  }, watchdogMs).unref();
  const startedAt = new Date();
  const t0 = performance.now();
  natsServerBinary();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'peerbroker-soak-'));
  const config = sessionConfig(tmp);
  const nodes: Node[] = [];
  const gens: Gen[] = [];
  let nats: NatsServer | undefined;
  let sampler: Sampler | undefined;
  try {
    nats = await NatsServer.start('soak');
    const base = { nats: [nats.url], capacity: CAPACITY, workMs: 0, module: BANK_MODULE, nodeArgs: GC_TRACE_ARGS };
    const solo = await startBroker({ ...base, id: 's1', cluster: 'soak-solo', extraArgs: ['--config', config] });
    nodes.push(solo);
    const cluster = await startBrokerCluster(3, { ...base, cluster: 'soak', extraArgs: ['--config', config, '--forward-legacy'] });
    nodes.push(...cluster);
    const maxCalls = Number.isFinite(args.calls) ? args.calls : 50_000_000;
    const brief = (name: string, ns: Node[]): GeneratorBrief => ({
      target: { name, endpoints: ns.map((n) => n.endpoint), capacity: CAPACITY },
      mix: MIX[name as 'solo' | 'cluster'],
      maxMs: args.seconds * 1_000,
      maxCalls,
      deadlineMs: DEADLINE_MS,
      drainMs: DRAIN_MS,
    });
    gens.push(forkGenerator('solo', brief('solo', [solo])), forkGenerator('cluster', brief('cluster', cluster)));
    await Promise.all(gens.map((g) => g.ready));

    const watched: Watched[] = [
      { name: 'solo/s1', pid: solo.child.pid, broker: { endpoint: solo.endpoint, cluster: 'soak-solo', nodeId: 's1', child: solo.child } },
      ...cluster.map((n) => ({ name: `cluster/${n.id}`, pid: n.child.pid, broker: { endpoint: n.endpoint, cluster: 'soak', nodeId: n.id, child: n.child } })),
      { name: 'nats-server', pid: nats.pid },
      ...gens.map((g) => ({ name: `generator/${g.name}`, pid: g.child.pid })),
    ];
    const brokers = watched.filter((w) => w.broker).map((w) => w.name);
    sampler = new Sampler(watched, nats.url);
    await sampler.start(SAMPLE_EVERY_MS);
    await sleep(2 * SAMPLE_EVERY_MS);
    sampler.resetMaxQueued();
    const loadStartMs = sampler.now();
    const loadAvg = loadAverage();
    process.stdout.write(`soak: load starts (target ${Number.isFinite(args.calls) ? args.calls.toLocaleString('en-US') : 'none'} calls, at most ${args.seconds} s; load average ${loadAvg[0]})\n`);
    for (const g of gens) g.child.proc.send({ type: 'go' } satisfies ToSoakGenerator);

    // The load: until the calls are made or the time is up; each generator also stops by itself.
    const total = () => gens.reduce((a, g) => a + g.calls, 0);
    let lastPrint = 0;
    while (gens.every((g) => !g.result && !g.error)) {
      const el = sampler.now() - loadStartMs;
      if (total() >= args.calls || el >= args.seconds * 1_000) break;
      if (el - lastPrint >= PROGRESS_EVERY_MS) {
        lastPrint = el;
        const rss = brokers.map((b) => `${b} ${sampler!.samples[b].at(-1)?.rssMb.toFixed(0)} MB`).join(', ');
        process.stdout.write(`  ${(el / 1000).toFixed(0)} s: ${total().toLocaleString('en-US')} calls (${Math.round(total() / (el / 1000 || 1))}/s); ${rss}\n`);
      }
      await sleep(200);
    }
    for (const g of gens) if (!g.child.exitedNow) g.child.proc.send({ type: 'stop' } satisfies ToSoakGenerator);
    const stopEpochMs = Date.now();
    const stopMs = sampler.now();
    await Promise.race([Promise.all(gens.map((g) => g.done)), sleep(DRAIN_MS + 10_000)]);
    const loadEndMs = sampler.now();
    const settled = await settle(sampler, brokers, Date.now(), THRESHOLDS.settleMs);
    await sleep(2 * SAMPLE_EVERY_MS); // a last sample or two after the load, for the "after" figures
    const statuses = Object.fromEntries(await Promise.all(brokers.map(async (b) => [b, await statusCounters(sampler!, b)] as const)));
    await sampler.stop();

    const counts: Record<string, Counts> = Object.fromEntries(gens.map((g) => [g.name, g.result?.counts ?? {}]));
    const { lines, total: calls } = callTable(counts);
    const figs = watched.map((w) =>
      figuresOf(w.name, sampler!.samples[w.name], loadStartMs, stopMs, w.broker && { heap: sampler!.heap[w.name], maxQueued: sampler!.maxQueued[w.name] ?? 0 }),
    );
    const unfinished = gens.reduce((a, g) => a + (g.result?.unfinished ?? 0), 0);
    const generatorErrors = gens.filter((g) => g.error || !g.result).map((g) => g.error ?? `generator ${g.name} sent no result within the drain`);
    const details = Object.fromEntries(gens.map((g) => [g.name, g.result?.details ?? {}]));
    const fails = failures(figs, settled, THRESHOLDS, unfinished, [...generatorErrors, ...unexpected(counts, details)], (stopMs - loadStartMs) / 2);
    const slopesJudged = (stopMs - loadStartMs) / 2 >= THRESHOLDS.minSlopeWindowMs;
    const loadS = (stopMs - loadStartMs) / 1000;
    const text = [
      `soak: ${calls.toLocaleString('en-US')} calls in ${loadS.toFixed(0)} s of load (${Math.round(calls / loadS).toLocaleString('en-US')}/s); ` +
        `calls in flight ended ${((loadEndMs - stopMs) / 1000).toFixed(1)} s after the stop; running/queued 0 on every broker ${(settled.afterMs / 1000).toFixed(1)} s after that; ` +
        `whole run ${((performance.now() - t0) / 1000).toFixed(0)} s; load average at the start ${loadAvg.join(' ')}`,
      'calls by target, kind and outcome:',
      ...lines,
      `processes (slopes: least squares over the second half of the load; limits: RSS ${THRESHOLDS.rssSlopeMbPerMin} MB/min, heap after full GC ${THRESHOLDS.heapSlopeMbPerMin} MB/min, ${THRESHOLDS.fdSlopePerMin} fds/min` +
        (slopesJudged ? '):' : `; not judged: a second half under ${THRESHOLDS.minSlopeWindowMs / 1000} s is warm-up):`),
      ...processTable(figs, THRESHOLDS, slopesJudged),
      'broker counters (Status): ' + Object.entries(statuses).map(([b, s]) => `${b} run ${s.run}, redirected ${s.redirected}, rejected ${s.rejected}`).join('; '),
      fails.length ? `FAIL:\n${fails.map((f) => `  - ${f}`).join('\n')}` : 'PASS',
    ].join('\n');
    process.stdout.write(text + '\n');
    fs.mkdirSync(args.out, { recursive: true });
    const file = path.join(args.out, `peerbroker-soak-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    const json = {
      startedAt: startedAt.toISOString(),
      args: { ...args, calls: Number.isFinite(args.calls) ? args.calls : null },
      thresholds: THRESHOLDS,
      mix: MIX,
      capacity: CAPACITY,
      sessionIdleMs: SESSION_IDLE_MS,
      loadAverageAtStart: loadAvg,
      machine: { cpus: os.cpus().length, node: process.version },
      loadSeconds: loadS,
      drainSeconds: (loadEndMs - stopMs) / 1000,
      stoppedBy: gens.map((g) => `${g.name}: ${g.result?.stoppedBy ?? 'none'}`),
      stopEpochMs,
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
    fs.writeFileSync(file, JSON.stringify(json, null, 1));
    process.stdout.write(`summary written to ${file}\n`);
    process.exitCode = fails.length ? 1 : 0;
  } finally {
    await sampler?.stop();
    await Promise.all(gens.map((g) => stopChild(g.child, 'SIGKILL')));
    await stopNodes(nodes);
    await nats?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** A broker's call counters from its `Status` answer. */
async function statusCounters(sampler: Sampler, name: string): Promise<{ run: string; redirected: string; rejected: string }> {
  const s = await sampler.status(name);
  return { run: String(s?.callsRun ?? '?'), redirected: String(s?.callsRedirected ?? '?'), rejected: String(s?.callsRejected ?? '?') };
}

main().catch((err: Error) => {
  process.stderr.write(`soak: ${err.stack ?? String(err)}\n`);
  killAllNow();
  process.exit(1);
});
