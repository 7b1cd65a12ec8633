/**
 * Scenario 8, saturation: three brokers, all peerbroker traffic entering at n1, offered
 * 50–95 % of the cluster's measured capacity as Poisson arrivals; the balancing clients
 * (follower, stub) are compared, pair by pair, with anchors measured in the same repeat.
 */
import type { LoadConfig } from '../load/protocol';
import { NatsServer } from '../lib/nats';
import { startBrokerCluster, startResponder, stopNodes, type Node } from '../lib/nodes';
import { noiseRetry, quietGate, runLoad, summarize } from '../lib/load';
import { renderSaturation } from '../report/saturation';
import { addAnchorRatios, DEADLINE_MS, runSatCell, SAT_SUBJECT, SYSTEMS, type SatSystem } from './saturation-cell';
import type { Ctx, Row, Scenario, ScenarioRun } from './types';

const NODES = 3;
/** The brokers' `--capacity`, and the responders' admission (8 at once, 32 waiting). */
const CAPACITY = 8;
/** Calls in flight while the capacity is measured: every slot busy, half the queues full. */
const CAPACITY_IN_FLIGHT = 2 * NODES * CAPACITY;
/** Load, unmeasured, on a fresh cluster before its first cell. */
const CLUSTER_WARM_MS = 2_500;

/** A workload: what each call does on the node. */
interface Workload {
  workMs: number;
  env: NodeJS.ProcessEnv;
  label: string;
}

/**
 * io: 50 ms of waiting (a timer), little CPU: slots, not cores, run out. cpu: 2 ms of CPU per
 * call in 1 ms slices (examples/bank BANK_WORK_CPU=1): the two cores run out. hold (opt-in,
 * `--workload hold`): 5 ms per call holding the node's event loop in 1 ms slices while asleep
 * (BANK_WORK_CPU=hold): each node's event loop runs out, as if it had a core of its own, and
 * a redirect costs the CPU it costs without taking it from the other nodes' work.
 */
export const WORKLOADS: Record<string, Workload> = {
  io: { workMs: 50, env: {}, label: '50 ms of waiting per call (BANK_WORK_MS=50)' },
  cpu: { workMs: 2, env: { BANK_WORK_CPU: '1' }, label: '2 ms of CPU per call in 1 ms slices (BANK_WORK_MS=2, BANK_WORK_CPU=1)' },
  hold: {
    workMs: 5,
    env: { BANK_WORK_CPU: 'hold' },
    label: '5 ms holding the event loop per call in 1 ms slices, asleep (BANK_WORK_MS=5, BANK_WORK_CPU=hold)',
  },
};

/** The settings of one invocation, from the scenario's options. */
interface Plan {
  points: number[];
  workloads: string[];
  generators: number[];
  systems: SatSystem[];
  brokerArgs: string[];
  warmupMs: number;
  durationMs: number;
}

function list(v: string | undefined, fallback: string): string[] {
  return (v ?? fallback).split(',').map((x) => x.trim()).filter(Boolean);
}

/** Reads the options (and $BENCH_BROKER_ARGS); an invalid value names the option. */
export function parsePlan(o: Record<string, string>, quick: boolean): Plan {
  const bad = (name: string, why: string): never => {
    throw new Error(`saturation: invalid '--${name}': ${why}`);
  };
  const nums = (name: string, fallback: string, lo: number, hi: number) =>
    list(o[name], fallback).map((x) => {
      const n = Number(x);
      return Number.isFinite(n) && n >= lo && n <= hi ? n : bad(name, `'${x}' is not a number in ${lo}..${hi}`);
    });
  const workloads = list(o.workload, 'io,cpu');
  for (const w of workloads) if (!WORKLOADS[w]) bad('workload', `'${w}' (known: ${Object.keys(WORKLOADS).join(', ')})`);
  const systems = list(o.systems, SYSTEMS.join(',')) as SatSystem[];
  for (const s of systems) if (!SYSTEMS.includes(s)) bad('systems', `'${s}' (known: ${SYSTEMS.join(', ')})`);
  const brokerArgs = (o['broker-args'] ?? process.env.BENCH_BROKER_ARGS ?? '').split(/\s+/).filter(Boolean);
  return {
    points: nums('points', quick ? '85' : '50,70,85,95', 1, 150),
    workloads,
    generators: nums('generators', quick ? '1' : '1,3', 1, 8).map(Math.round),
    systems,
    brokerArgs,
    warmupMs: nums('warmup-ms', '1000', 0, 60_000)[0],
    durationMs: nums('window-ms', quick ? '2500' : '4000', 500, 120_000)[0],
  };
}

/**
 * The cluster's capacity: a closed loop of CAPACITY_IN_FLIGHT calls, round-robin over the three
 * brokers with a plain grpc-js client (never redirected), so every slot (or core) stays busy.
 */
async function measureCapacity(workload: string, brokers: Node[], nats: NatsServer, warmupMs: number, durationMs: number): Promise<Row> {
  const cfg: LoadConfig = {
    id: `capacity-${workload}`,
    target: { kind: 'grpc-rr', endpoints: brokers.map((b) => b.endpoint) },
    call: { kind: 'quote' },
    mode: { kind: 'closed', concurrency: CAPACITY_IN_FLIGHT },
    warmupMs,
    durationMs,
    maxCalls: 20_000 * Math.ceil((warmupMs + durationMs) / 1000),
    deadlineMs: DEADLINE_MS,
    bucketMs: 250,
    threads: 1,
  };
  const run = await runLoad([cfg], [...brokers.map((b) => b.child), nats.child]);
  const s = summarize(run.results, 250);
  const serverMs = Object.values(run.serverCpuMs).reduce((a, b) => a + (b || 0), 0);
  const failed = Object.values(s.errors).reduce((a, b) => a + b, 0);
  return {
    id: `${workload}/capacity`,
    labels: { workload, errors: Object.entries(s.errors).map(([k, v]) => `${k} ${v}`).join(', ') },
    metrics: {
      capacity: s.throughput,
      p50: s.p50,
      p99: s.p99,
      failedPerSec: failed / (s.windowMs / 1000),
      clientCpuPct: (100 * s.clientCpuMs) / s.windowMs,
      serverCpuPct: (100 * serverMs) / s.windowMs,
      otherCores: run.otherCores,
      inFlight: CAPACITY_IN_FLIGHT,
    },
  };
}

/** The same seed for every system of a cell in a repeat; another for each cell and repeat. */
function seedOf(run: number, workload: string, generators: number, point: number): number {
  let h = 2166136261;
  for (const ch of `${run}/${workload}/${generators}/${point}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return h >>> 0;
}

/** One repeat of one workload: a fresh cluster, then every cell, every system in rotated order. */
async function runWorkload(ctx: Ctx, plan: Plan, workload: string, rows: Row[], notes: string[]): Promise<void> {
  const w = WORKLOADS[workload];
  const nats = await NatsServer.start(`sat-${workload}`);
  const nodes: Node[] = [];
  try {
    const brokers = await startBrokerCluster(NODES, {
      nats: [nats.url],
      cluster: `sat-${workload}-${ctx.run}`,
      capacity: CAPACITY,
      workMs: w.workMs,
      env: w.env,
      extraArgs: plan.brokerArgs,
    });
    nodes.push(...brokers);
    const responders = await Promise.all(
      brokers.map((b) =>
        startResponder({ nodeId: b.id, servers: [nats.url], subject: SAT_SUBJECT, mode: 'quote', work: w.workMs, capacity: CAPACITY, env: w.env }),
      ),
    );
    nodes.push(...responders);
    // Measured again in every repeat: on a shared machine what the cluster can do changes with
    // other people's work, and each repeat's points are shares of what it can do then.
    ctx.log(`saturation: ${workload}: measuring capacity (closed loop, ${CAPACITY_IN_FLIGHT} in flight, round-robin over ${NODES} brokers)`);
    const cap = await measureCapacity(workload, brokers, nats, plan.warmupMs, plan.durationMs);
    ctx.log(`saturation: ${workload}: capacity ${Math.round(cap.metrics.capacity)} calls/s (p50 ${cap.metrics.p50.toFixed(1)} ms, failed ${cap.metrics.failedPerSec.toFixed(1)}/s)`);
    rows.push(cap);
    // Unmeasured: fresh brokers run their redirect path cold (JIT, call timings, peer loads); without
    // this, whichever system comes first in the repeat pays for it.
    await runSatCell({ id: `${workload}/warm`, system: 'follower', brokers, responders, nats, rate: Math.round(0.7 * cap.metrics.capacity), generators: 1, seed: 1, warmupMs: 0, durationMs: CLUSTER_WARM_MS, labels: {} });
    let cellIndex = 0;
    for (const generators of plan.generators) {
      for (const point of plan.points) {
        const rate = Math.round((cap.metrics.capacity * point) / 100);
        const seed = seedOf(ctx.run, workload, generators, point);
        // Rotated per repeat (and per cell), so no system always runs first or last.
        const k = (ctx.run + cellIndex++) % plan.systems.length;
        const order = [...plan.systems.slice(k), ...plan.systems.slice(0, k)];
        const cellRows: Row[] = [];
        for (const system of order) {
          const id = `${workload}/g${generators}/${point}/${system}`;
          ctx.log(`saturation: ${workload}, ${generators} generator(s), ${point} % (${rate}/s): ${system}`);
          try {
            const row = await runSatCell({
              id,
              system,
              brokers,
              responders,
              nats,
              rate,
              generators,
              seed,
              warmupMs: plan.warmupMs,
              durationMs: plan.durationMs,
              labels: { workload, generators: String(generators), point: String(point) },
            });
            cellRows.push(row);
          } catch (err) {
            // One failed measurement loses one row, not the repeat.
            const message = (err as Error).message.split('\n').slice(0, 3).join(' / ');
            notes.push(`repeat ${ctx.run + 1}: ${id} failed: ${message}`);
            ctx.log(`saturation: ${id} failed: ${message}`);
          }
        }
        addAnchorRatios(cellRows);
        rows.push(...cellRows);
      }
    }
  } finally {
    await stopNodes(nodes);
    await nats.stop();
  }
}

/** Scenario 8: how far the balancing clients fall behind the anchors as the cluster fills up. */
export const saturation: Scenario = {
  name: 'saturation',
  title: `8. Saturation: ${NODES} brokers (capacity ${CAPACITY}), all peerbroker traffic entering at n1, 50–95 % of measured capacity`,
  optIn: true,
  defaultRuns: { quick: 3, full: 3 },
  options: [
    { name: 'points', help: 'percent of measured capacity, comma-separated (default 50,70,85,95; quick 85)' },
    { name: 'workload', help: 'io, cpu, hold, comma-separated (default io,cpu; hold: a core per node, see bench/README)' },
    { name: 'generators', help: 'generator threads, comma-separated (default 1,3; quick 1)' },
    { name: 'systems', help: `systems, comma-separated (default ${SYSTEMS.join(',')})` },
    { name: 'broker-args', help: "extra 'peerbroker start' flags, e.g. \"--threshold 0.6 --margin 0.1\" (or $BENCH_BROKER_ARGS)" },
    { name: 'warmup-ms', help: 'warm-up before each window, ms (default 1000)' },
    { name: 'window-ms', help: 'measured window, ms (default 4000; quick 2500)' },
  ],
  checkOptions: (options, quick) => void parsePlan(options, quick),
  async run(ctx: Ctx): Promise<ScenarioRun> {
    const plan = parsePlan(ctx.options, ctx.quick);
    if (ctx.run === 0) {
      ctx.log(`saturation: points ${plan.points.join(',')} %, workloads ${plan.workloads.join(',')}, generators ${plan.generators.join(',')}, ` +
        `systems ${plan.systems.join(',')}, broker args '${plan.brokerArgs.join(' ')}', ${plan.warmupMs} + ${plan.durationMs} ms`);
    }
    // The anchors in each pair stand in for the quiet-gate and noise retries, which would
    // double the run time; the CPU taken by other work is reported per row instead.
    const saved = { gate: { ...quietGate }, retry: { ...noiseRetry } };
    Object.assign(quietGate, { maxWaitMs: 0 });
    Object.assign(noiseRetry, { perRun: 0 });
    const rows: Row[] = [];
    const notes: string[] = [];
    try {
      // Alternate the workload order per repeat too.
      const workloads = ctx.run % 2 ? [...plan.workloads].reverse() : plan.workloads;
      for (const w of workloads) await runWorkload(ctx, plan, w, rows, notes);
    } finally {
      Object.assign(quietGate, saved.gate);
      Object.assign(noiseRetry, saved.retry);
    }
    const settings = `broker args: '${plan.brokerArgs.join(' ') || '(none)'}'; ${plan.warmupMs} ms warm-up + ${plan.durationMs} ms window per measurement`;
    return { rows, notes: [settings, ...notes] };
  },
  render: renderSaturation,
};
