import { n3, ratio, spread, table } from '../lib/format';
import type { Row, ScenarioResult } from '../scenarios/types';

type Results = Record<string, ScenarioResult>;

/** Per rule: every balancing cell it ran in (skew, and stale at each period). */
function ruleCells(results: Results): Map<string, Array<{ where: string; m: Record<string, number> }>> {
  const cells = new Map<string, Array<{ where: string; m: Record<string, number> }>>();
  const add = (rule: string, where: string, row: Row) => {
    const list = cells.get(rule) ?? [];
    list.push({ where, m: row.metrics });
    cells.set(rule, list);
  };
  for (const row of results.skew?.rows ?? []) if (row.id.startsWith('pb:')) add(row.id.slice(3), 'skew', row);
  for (const row of results.stale?.rows ?? []) if (row.id.includes('@')) add(row.labels.rule, `stale ${row.labels.period} ms`, row);
  return cells;
}

/** Geometric mean of the finite positive values; NaN when there is none. */
export function geomean(v: number[]): number {
  const f = v.filter((x) => Number.isFinite(x) && x > 0);
  return f.length ? Math.exp(f.reduce((a, x) => a + Math.log(x), 0) / f.length) : NaN;
}

/**
 * The peer-choice rule the figures favour: lowest geometric mean of p99 over the ideal's
 * across the skew and stale cells, among rules whose throughput keeps ≥ 0.95 of the ideal's
 * in most of them (when none does, all rules compete).
 */
export function recommendedRule(results: Results): { rule: string; score: number; scores: Map<string, { p99: number; tput: number; cells: number }> } | undefined {
  const cells = ruleCells(results);
  if (cells.size === 0) return undefined;
  const scores = new Map<string, { p99: number; tput: number; cells: number }>();
  for (const [rule, list] of cells) {
    scores.set(rule, {
      p99: geomean(list.map((c) => c.m.p99VsIdeal)),
      tput: geomean(list.map((c) => c.m.throughputVsIdeal)),
      cells: list.length,
    });
  }
  const ok = [...scores].filter(([, s]) => s.tput >= 0.95);
  const pool = ok.length ? ok : [...scores];
  pool.sort((a, b) => a[1].p99 - b[1].p99);
  return { rule: pool[0][0], score: pool[0][1].p99, scores };
}

/** The headline table of latest.md: each target, the figure, met or not. */
export function renderSummary(results: Results): string {
  const lines: Array<Array<string>> = [];
  const row = (s: string, id: string) => results[s]?.rows.find((r) => r.id === id)?.metrics;
  const o = results.overhead;
  if (o) {
    for (const r of o.rows.filter((x) => x.id.startsWith('ratio@'))) {
      lines.push([
        '1. overhead',
        `${r.labels.inFlight} in flight: throughput ≥ 0.95, p50 ≤ 1.05 × plain grpc-js`,
        `${spread(r.metrics, 'throughputRatio', 0.95, 'high')}, ${spread(r.metrics, 'p50Ratio', 1.05, 'low')}`,
      ]);
    }
  }
  for (const level of [1, 16]) {
    const m = row('redirect', `ratio@${level}`);
    if (m) lines.push(['2. redirect', `${level} in flight: redirected / direct latency ≤ 2.0 (p50, p99)`, `${spread(m, 'p50Ratio', 2, 'low')}, ${spread(m, 'p99Ratio', 2, 'low')}`]);
  }
  const cells = ruleCells(results);
  for (const [rule, list] of cells) {
    for (const c of list) {
      lines.push([
        c.where.startsWith('skew') ? '3. skew' : '4. stale',
        `${rule}${c.where.startsWith('stale') ? ` @ ${c.where.slice(6)}` : ''}: p99 ≤ 1.25 ×, calls/s ≥ 0.95 × ideal`,
        `${spread(c.m, 'p99VsIdeal', 1.25, 'low')}, ${spread(c.m, 'throughputVsIdeal', 0.95, 'high')}`,
      ]);
    }
  }
  const out = lines.length ? [table(['scenario', 'target', 'median figure'], lines)] : [];
  const rec = recommendedRule(results);
  if (rec) {
    const rows = [...rec.scores].map(([rule, s]) => [rule, n3(s.p99), n3(s.tput), String(s.cells)]);
    out.push(
      '',
      `**Peer-choice rule the figures favour: \`${rec.rule}\`** (lowest geometric mean of p99 over the ideal's across the ` +
        'skew and stale cells, among rules keeping ≥ 0.95 of the ideal\'s throughput):',
      '',
      table(['rule', 'p99 / ideal (geomean)', 'calls/s / ideal (geomean)', 'cells'], rows),
    );
  }
  const out7 = results.outage?.rows;
  if (out7?.length) {
    out.push('', `Control plane down: ${out7.map((r) => `${r.labels.system} served ${Math.round(r.metrics.servedInOutage)} calls`).join('; ')} during the outage.`);
  }
  return out.join('\n');
}
