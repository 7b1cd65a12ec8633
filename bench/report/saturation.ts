/**
 * The saturation section of latest.md: the cluster's measured capacity, the ratios of the
 * balancing clients to their anchors (median and min–max over the repeats), every system's
 * figures, and what the failed calls said.
 */
import { median } from '../lib/histogram';
import { int, n3, pct, table } from '../lib/format';
import type { Row, ScenarioResult } from '../scenarios/types';
import { geomean } from './summary';

const BALANCERS = ['follower', 'stub'] as const;
const RATIOS: Array<[string, string]> = [
  ['p99VsRr', 'p99 / rr'],
  ['p99VsJsq', 'p99 / jsq'],
  ['tputVsRr', 'calls/s / rr'],
  ['tputVsJsq', 'calls/s / jsq'],
];

/** `median (min–max)` of one figure over the repeats. */
export function spread(values: number[]): string {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return '–';
  const f = (x: number) => x.toFixed(2);
  return v.length === 1 ? f(v[0]) : `${f(median(v))} (${f(Math.min(...v))}–${f(Math.max(...v))})`;
}

/** The cells (workload, generators, point) in the order they ran, as row-id prefixes. */
export function cellsOf(rows: Row[]): string[] {
  const cells: string[] = [];
  for (const r of rows) {
    const m = /^(.+\/g\d+\/\d+)\//.exec(r.id);
    if (m && !cells.includes(m[1])) cells.push(m[1]);
  }
  return cells;
}

/** One figure of one system of one cell, in every repeat. */
export function perRepeat(r: ScenarioResult, cell: string, system: string, key: string): number[] {
  return r.perRun.map((rows) => rows.find((x) => x.id === `${cell}/${system}`)?.metrics[key] ?? NaN);
}

function cellLabel(cell: string): string {
  const [workload, g, point] = cell.split('/');
  return `${workload}, ${g.slice(1)} gen, ${point} %`;
}

function capacityLines(r: ScenarioResult): string[] {
  return r.rows
    .filter((x) => x.id.endsWith('/capacity'))
    .map((x) => {
      const m = x.metrics;
      const each = r.perRun.map((rows) => rows.find((y) => y.id === x.id)?.metrics.capacity ?? NaN).filter(Number.isFinite);
      return (
        `- **${x.labels.workload} capacity: ${int(m.capacity)} calls/s** (repeats: ${each.map(int).join(', ')}) — closed loop, ` +
        `${m.inFlight} calls in flight, a plain grpc-js client round-robin over n1, n2, n3 (never redirected), ` +
        `measured at the start of each repeat; medians: ` +
        `p50 ${n3(m.p50)} ms, p99 ${n3(m.p99)} ms, failed ${n3(m.failedPerSec)}/s, client CPU ${int(m.clientCpuPct)} %, ` +
        `servers + NATS CPU ${int(m.serverCpuPct)} %, other cores ${n3(m.otherCores)}.`
      );
    });
}

/** The ratios table: one line per cell, follower and stub over both anchors. */
export function ratioTable(r: ScenarioResult): string {
  const cells = cellsOf(r.rows);
  const head = ['cell', 'offered/s', 'rr p99 ms', 'jsq p99 ms'];
  for (const b of BALANCERS) for (const [, h] of RATIOS) head.push(`${b} ${h}`);
  head.push('follower failed', 'stub failed');
  const lines = cells.map((cell) => {
    const med = (system: string, key: string) => median(perRepeat(r, cell, system, key));
    // Every system of a cell is offered the same rate in a repeat; take whichever ran.
    const offered = median(r.perRun.map((rows) => rows.find((x) => x.id.startsWith(`${cell}/`))?.metrics.offered ?? NaN));
    const line = [cellLabel(cell), int(offered), n3(med('round-robin', 'p99')), n3(med('jsq', 'p99'))];
    for (const b of BALANCERS) for (const [k] of RATIOS) line.push(spread(perRepeat(r, cell, b, k)));
    for (const b of BALANCERS) line.push(`${n3(med(b, 'failedPct'))} %`);
    return line;
  });
  return table(head, lines);
}

/**
 * One line per workload, generator count and balancing client: in each repeat the geometric
 * mean of its ratios over the points, then median (min–max) over the repeats. One figure to
 * compare two decision rules by, steadier than any single cell.
 */
export function overallTable(r: ScenarioResult): string {
  const cells = cellsOf(r.rows);
  const groups = [...new Set(cells.map((c) => c.split('/').slice(0, 2).join('/')))];
  const lines = groups.flatMap((g) =>
    BALANCERS.map((b) => {
      const mine = cells.filter((c) => c.startsWith(`${g}/`));
      const [workload, gens] = g.split('/');
      const line = [`${workload}, ${gens.slice(1)} gen, ${mine.map((c) => c.split('/')[2]).join('/')} %`, b];
      for (const [k] of RATIOS) {
        const byRepeat = r.perRun.map((_, i) => geomean(mine.map((c) => perRepeat(r, c, b, k)[i])));
        line.push(spread(byRepeat));
      }
      return line;
    }),
  );
  return table(['workload, points', 'client', ...RATIOS.map(([, h]) => `${h} (geomean)`)], lines);
}

function detailTable(r: ScenarioResult): string {
  const nodes = ['n1', 'n2', 'n3'];
  const rows = r.rows.filter((x) => !x.id.endsWith('/capacity'));
  return table(
    [
      'cell', 'system', 'offered/s', 'calls/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'rejected/s', 'timeouts/s', 'other failed/s',
      'redirects/call', ...nodes.map((n) => `on ${n}`), 'calls/client CPU-s', 'calls/server CPU-s', 'CPU µs/call', 'other cores',
    ],
    rows.map((x) => {
      const m = x.metrics;
      const balances = x.labels.system === 'follower' || x.labels.system === 'stub';
      return [
        cellLabel(x.id.split('/').slice(0, 3).join('/')),
        x.labels.system,
        int(m.offered),
        int(m.throughput),
        n3(m.p50),
        n3(m.p99),
        n3(m.p999),
        n3(m.rejectedPerSec),
        n3(m.timeoutsPerSec),
        n3(m.otherErrorsPerSec + m.skippedPerSec),
        balances ? n3(m.redirectsPerCall) : '–',
        ...nodes.map((n) => pct(100 * (m[`share:${n}`] ?? NaN))),
        int(m.callsPerClientCpuS),
        int(m.callsPerServerCpuS),
        int(m.cpuUsPerCall),
        n3(m.otherCores),
      ];
    }),
  );
}

/** What failed calls said: the first few distinct status details of each system, any repeat. */
function detailLines(r: ScenarioResult): string[] {
  const seen = new Map<string, Set<string>>();
  for (const rows of r.perRun) {
    for (const x of rows) {
      if (!x.labels.details) continue;
      const key = `${x.labels.workload}, ${x.labels.system}`;
      const set = seen.get(key) ?? new Set<string>();
      for (const d of x.labels.details.split('; ')) if (set.size < 3) set.add(d);
      seen.set(key, set);
    }
  }
  return [...seen].map(([k, set]) => `- ${k}: ${[...set].join('; ')}`);
}

/** The whole section. */
export function renderSaturation(r: ScenarioResult): string {
  return [
    ...capacityLines(r),
    '',
    '**Ratios per pair** (each repeat\'s balancing client over the anchors measured in the same repeat on the same ' +
      'Poisson schedule; median (min–max) over the repeats). "failed" is the median share of offered calls that were ' +
      'rejected, timed out or skipped.',
    '',
    ratioTable(r),
    '',
    '**Over all points** (in each repeat the geometric mean of a client\'s ratios over the points, then median (min–max) over the repeats):',
    '',
    overallTable(r),
    '',
    '**Every system** (median of each figure over the repeats; "calls/server CPU-s" counts the three servers and ' +
      'nats-server; "CPU µs/call" is clients and servers together).',
    '',
    detailTable(r),
    '',
    'Status details of failed calls (first few):',
    '',
    ...detailLines(r),
  ].join('\n');
}
