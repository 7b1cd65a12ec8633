/**
 * One measurement of the saturation scenario: one system, offered one Poisson schedule at one
 * rate, all peerbroker traffic entering at n1; and the ratios of each system to its anchors.
 */
import type { LoadConfig, Target } from '../load/protocol';
import { loadMetrics } from '../lib/format';
import { runLoad, summarize } from '../lib/load';
import type { NatsServer } from '../lib/nats';
import type { Node } from '../lib/nodes';
import { loadAverage } from '../lib/proc';
import type { Row } from './types';

/** The systems compared: two balancing clients, then the anchors (round-robin and jsq are those of the ratios). */
export const SYSTEMS = ['follower', 'stub', 'round-robin', 'jsq', 'nats-queue'] as const;
export type SatSystem = (typeof SYSTEMS)[number];
/** The NATS subject the queue-group responders serve. */
export const SAT_SUBJECT = 'bench.sat';
/** Deadline of every call, ms. */
export const DEADLINE_MS = 2_000;
const BUCKET_MS = 250;

/** What one measurement needs. */
export interface SatCell {
  id: string;
  system: SatSystem;
  brokers: Node[];
  responders: Node[];
  nats: NatsServer;
  /** Calls per second offered in total, and the generator threads sharing them. */
  rate: number;
  generators: number;
  /** Seeds the Poisson schedule: the same for every system of a cell within a repeat. */
  seed: number;
  warmupMs: number;
  durationMs: number;
  labels: Record<string, string>;
}

function target(c: SatCell): Target {
  const endpoints = c.brokers.map((n) => n.endpoint);
  switch (c.system) {
    case 'follower':
      return { kind: 'follower', endpoints };
    case 'stub':
      return { kind: 'stub', endpoints };
    case 'round-robin':
      return { kind: 'grpc-rr', endpoints };
    case 'jsq':
      return { kind: 'jsq', endpoints };
    case 'nats-queue':
      return { kind: 'nats', servers: [c.nats.url], subject: SAT_SUBJECT };
  }
}

/** Classes of failure, by the error names the generators report. */
function failures(errors: Record<string, number>): { rejected: number; timeouts: number; other: number } {
  const f = { rejected: 0, timeouts: 0, other: 0 };
  for (const [name, n] of Object.entries(errors)) {
    if (/RESOURCE_EXHAUSTED/.test(name)) f.rejected += n;
    else if (/DEADLINE|TIMEOUT/.test(name)) f.timeouts += n;
    else f.other += n;
  }
  return f;
}

/** Measures one system in one cell; returns its row. */
export async function runSatCell(c: SatCell): Promise<Row> {
  const totalMs = c.warmupMs + c.durationMs;
  const cfg: LoadConfig = {
    id: c.id,
    target: target(c),
    call: { kind: 'quote' },
    // A call waits at most its deadline, so more in flight than rate × deadline means a stuck generator.
    mode: { kind: 'poisson', ratePerSec: c.rate, seed: c.seed, maxInFlight: Math.ceil((c.rate * DEADLINE_MS) / 1000) + 100 },
    warmupMs: c.warmupMs,
    durationMs: c.durationMs,
    maxCalls: Math.ceil((1.3 * c.rate * totalMs) / 1000) + 50,
    deadlineMs: DEADLINE_MS,
    bucketMs: BUCKET_MS,
    threads: c.generators,
  };
  const servers = c.system === 'nats-queue' ? c.responders : c.brokers;
  const loadAvg1 = loadAverage()[0];
  const run = await runLoad([cfg], [...servers.map((n) => n.child), c.nats.child]);
  const s = summarize(run.results, BUCKET_MS);
  const serverMs = servers.reduce((a, n) => a + (run.serverCpuMs[n.child.name] ?? 0), 0) + (run.serverCpuMs[c.nats.child.name] ?? 0);
  const m = loadMetrics(s, serverMs, run.otherCores, { nats: run.serverCpuMs[c.nats.child.name] });
  const sec = s.windowMs / 1000;
  const f = failures(s.errors);
  const offeredInWindow = s.okCalls + Object.values(s.errors).reduce((a, b) => a + b, 0) + s.skippedPerSec * sec;
  Object.assign(m, {
    offered: c.rate,
    loadAvg1,
    // The same in every system of a cell and repeat (one schedule): a check, not a figure.
    scheduled: offeredInWindow,
    generators: c.generators,
    rejectedPerSec: f.rejected / sec,
    timeoutsPerSec: f.timeouts / sec,
    otherErrorsPerSec: f.other / sec,
    failedPct: (100 * (offeredInWindow - s.okCalls)) / Math.max(1, offeredInWindow),
    cpuUsPerCall: ((s.clientCpuMs + serverMs) * 1000) / Math.max(1, s.okCalls),
    redirectsRefused: s.redirectsRefused,
  });
  for (const n of c.brokers) m[`share:${n.id}`] = (s.servedBy[n.id] ?? 0) / Math.max(1, s.okCalls);
  const details = Object.entries(s.errorDetails).map(([k, v]) => `${k}: ${v.map((d) => `"${d}"`).join(', ')}`);
  const errors = Object.entries(s.errors).map(([k, v]) => `${k} ${v}`);
  return { id: c.id, labels: { ...c.labels, system: c.system, errors: errors.join(', '), details: details.join('; ') }, metrics: m };
}

/** Adds each row's ratios to the anchors of its own cell (same repeat, same schedule). */
export function addAnchorRatios(rows: Row[]): void {
  const anchor = (name: string) => rows.find((r) => r.labels.system === name)?.metrics;
  const rr = anchor('round-robin');
  const jsq = anchor('jsq');
  for (const r of rows) {
    const m = r.metrics;
    if (rr) {
      m.p99VsRr = m.p99 / rr.p99;
      m.tputVsRr = m.throughput / rr.throughput;
    }
    if (jsq) {
      m.p99VsJsq = m.p99 / jsq.p99;
      m.tputVsJsq = m.throughput / jsq.throughput;
    }
  }
}
