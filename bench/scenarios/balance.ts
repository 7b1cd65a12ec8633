/**
 * What the skew and stale-information scenarios share: all traffic enters at node 1 of a
 * cluster of brokers with `capacity` 8 and 10 ms of work per call, at an open-loop rate
 * above one node's capacity and below the cluster's; only the way calls are spread differs.
 */
import type { LoadConfig, Target } from '../load/protocol';
import { int, loadMetrics, n3, pct, ratio, spread, table } from '../lib/format';
import { runLoad, split, summarize } from '../lib/load';
import type { NatsServer } from '../lib/nats';
import type { Node } from '../lib/nodes';
import type { Row, Timeline } from './types';

/** Concurrent calls per node (the brokers' `--capacity`, and the responders' admission). */
export const NODE_CAPACITY = 8;
/** BANK_WORK_MS: simulated work per call (a timer, not CPU). */
export const WORK_MS = 10;
/** Load generators per cell: one process tops out near one core. */
const GENERATORS = 2;
const BUCKET_MS = 250;

/** How calls are spread. */
export type System = 'none' | 'ideal' | 'nats-qg' | `pb:${string}`;

/** A person's name for a system. */
export function systemLabel(s: string): string {
  if (s === 'none') return 'no balancing (plain grpc-js to n1)';
  if (s === 'ideal') return 'ideal (client round-robin over all nodes)';
  if (s === 'nats-qg') return 'NATS request-reply, queue group';
  return `peerbroker, ${s.slice(3)}`;
}

export interface CellOptions {
  system: System;
  nodes: Node[];
  nats?: NatsServer;
  /** Calls per second offered in total. */
  rate: number;
  warmupMs: number;
  durationMs: number;
  /** Extra labels of the row. */
  labels?: Record<string, string>;
  id: string;
  /** Generator tick, ms (calls due are started together each tick). */
  tickMs?: number;
}

/** Runs one cell: loads the system, returns its row and its per-node timeline. */
export async function runCell(o: CellOptions): Promise<{ row: Row; timeline: Timeline }> {
  const endpoints = o.nodes.map((n) => n.endpoint);
  const target: Target =
    o.system === 'none'
      ? { kind: 'grpc', endpoints }
      : o.system === 'ideal'
        ? { kind: 'grpc-rr', endpoints }
        : o.system === 'nats-qg'
          ? { kind: 'nats', servers: [o.nats!.url], subject: 'bench.quote' }
          : { kind: 'stub', endpoints };
  const configs: LoadConfig[] = split(o.rate, GENERATORS).map((rate, i) => ({
    id: `${o.id}-${i}`,
    target,
    call: { kind: 'quote' },
    mode: { kind: 'open', ratePerSec: rate, maxInFlight: 400, tickMs: o.tickMs },
    warmupMs: o.warmupMs,
    durationMs: o.durationMs,
    maxCalls: Math.ceil((rate * (o.warmupMs + o.durationMs)) / 1000) + 10,
    deadlineMs: 2_000,
    bucketMs: BUCKET_MS,
  }));
  const watch = [...o.nodes.map((n) => n.child), ...(o.nats ? [o.nats.child] : [])];
  const v0 = o.nats && o.system.startsWith('pb:') ? await o.nats.varz().catch(() => undefined) : undefined;
  const t0 = performance.now();
  const run = await runLoad(configs, watch);
  const v1 = v0 ? await o.nats!.varz().catch(() => undefined) : undefined;
  const sec = (performance.now() - t0) / 1000;
  const s = summarize(run.results, BUCKET_MS);
  const serverMs = o.nodes.reduce((a, n) => a + (run.serverCpuMs[n.child.name] ?? 0), 0);
  const natsMs = o.nats ? run.serverCpuMs[o.nats.child.name] : NaN;
  const metrics = loadMetrics(s, serverMs, run.otherCores, { nats: natsMs });
  metrics.offered = o.rate;
  metrics.attempts = run.attempts;
  // Load reports each node published per second over the whole cell (periodic + on crossing the threshold).
  if (v0 && v1) metrics.reportsPerNodePerSec = (v1.in_msgs - v0.in_msgs) / sec / o.nodes.length;
  for (const n of o.nodes) metrics[`share:${n.id}`] = (s.servedBy[n.id] ?? 0) / Math.max(1, s.okCalls);
  const errors = Object.entries(s.errors)
    .map(([k, v]) => `${k} ${Math.round(v / (s.windowMs / 1000))}/s`)
    .join(', ');
  const series: Record<string, number[]> = {};
  for (const n of o.nodes) series[n.id] = s.timeline[n.id] ?? [];
  series.failed = s.failedTimeline;
  return {
    row: { id: o.id, labels: { system: systemLabel(o.system), errors, ...(o.labels ?? {}) }, metrics },
    timeline: {
      title: systemLabel(o.system),
      bucketMs: BUCKET_MS,
      marks: [
        { label: 'window', atMs: o.warmupMs },
        { label: 'end', atMs: o.warmupMs + o.durationMs },
      ],
      series,
    },
  };
}

/** Adds the ratios to the ideal's row (computed per run, so the median is of ratios). */
export function addIdealRatios(rows: Row[], idealId: string): void {
  const ideal = rows.find((r) => r.id === idealId);
  if (!ideal) return;
  for (const r of rows) {
    r.metrics.p99VsIdeal = r.metrics.p99 / ideal.metrics.p99;
    r.metrics.throughputVsIdeal = r.metrics.throughput / ideal.metrics.throughput;
  }
}

/** The common table of a balancing scenario. */
export function balanceTable(rows: Row[], nodeIds: string[], firstColumns: Array<[string, (r: Row) => string]>): string {
  return table(
    [
      ...firstColumns.map(([h]) => h),
      'calls/s',
      'p50 ms',
      'p99 ms',
      'p99.9 ms',
      'p99 / ideal',
      'calls/s / ideal',
      'failed/s',
      ...nodeIds.map((id) => `run on ${id}`),
      'redirects/call',
      'reports/s per node',
      'clients CPU %',
      'servers CPU %',
      'calls/client CPU-s',
      'calls/server CPU-s',
      'other cores',
    ],
    rows.map((r) => {
      const m = r.metrics;
      const isPb = r.labels.system?.startsWith('peerbroker');
      return [
        ...firstColumns.map(([, f]) => f(r)),
        int(m.throughput),
        n3(m.p50),
        n3(m.p99),
        n3(m.p999),
        isPb ? spread(m, 'p99VsIdeal', 1.25, 'low') : spread(m, 'p99VsIdeal'),
        isPb ? spread(m, 'throughputVsIdeal', 0.95, 'high') : spread(m, 'throughputVsIdeal'),
        int(m.errorsPerSec + m.skippedPerSec),
        ...nodeIds.map((id) => pct(100 * (m[`share:${id}`] ?? NaN))),
        isPb ? n3(m.redirectsPerCall) : '–',
        isPb ? int(m.reportsPerNodePerSec) : '–',
        int(m.clientCpuPct),
        int(m.serverCpuPct),
        int(m.callsPerClientCpuS),
        int(m.callsPerServerCpuS),
        n3(m.otherCores),
      ];
    }),
  );
}
