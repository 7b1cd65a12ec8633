import { percentile, type PhaseResult } from './load';

/** A finished phase with what the summary needs to say about it. */
export interface PhaseReport {
  title: string;
  result: PhaseResult;
  /** Redirects the client followed (0 for a plain grpc-js client). */
  redirectsFollowed: number;
  streamMessages: number;
}

const ms = (v: number) => (Number.isNaN(v) ? '-' : `${v.toFixed(1)} ms`);
const pct = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-');

/** The lines that describe one phase. */
export function formatPhase(p: PhaseReport, nodeIds: string[]): string[] {
  const r = p.result;
  const failed = [...r.errors.values()].reduce((a, b) => a + b, 0);
  const others = [...r.servedBy.keys()].filter((k) => !nodeIds.includes(k));
  const served = [...nodeIds, ...others].map((id) => `${id} ${r.servedBy.get(id) ?? 0} (${pct(r.servedBy.get(id) ?? 0, r.ok)})`);
  const errors = [...r.errors.entries()].map(([name, n]) => `${name} ${n}`).join(', ');
  return [
    `${p.title} (${(r.elapsedMs / 1000).toFixed(1)} s)`,
    `  calls       ${r.sent} sent, ${r.ok} ok, ${failed} failed${r.skipped > 0 ? `, ${r.skipped} not sent (client in-flight cap)` : ''}`,
    `  served by   ${served.join('   ')}`,
    `  redirects   ${p.redirectsFollowed} followed (${pct(p.redirectsFollowed, r.sent)} of calls)`,
    `  latency     unary   p50 ${ms(percentile(r.unaryMs, 50))}  p99 ${ms(percentile(r.unaryMs, 99))}  (${r.unaryMs.length} ok calls)`,
    `              streams p50 ${ms(percentile(r.streamMs, 50))}  p99 ${ms(percentile(r.streamMs, 99))}  (${r.streamMs.length} ok streams of ${p.streamMessages} messages)`,
    `  errors      ${failed} (${pct(failed, r.sent)})${errors ? `: ${errors}` : ''}`,
    ...[...r.errorSamples.entries()].map(([name, details]) => `              e.g. ${name}: ${details || '(no details)'}`),
  ];
}

/** The closing comparison: how much lower the tail is with balancing. */
export function formatRatio(without: PhaseResult, withBalancing: PhaseResult): string {
  const ratio = (a: number[], b: number[]) => {
    const x = percentile(a, 99);
    const y = percentile(b, 99);
    return Number.isNaN(x) || Number.isNaN(y) || y === 0 ? '-' : `${(x / y).toFixed(1)}x (${ms(x)} / ${ms(y)})`;
  };
  return (
    `p99 latency without / with balancing: unary ${ratio(without.unaryMs, withBalancing.unaryMs)}, ` +
    `streams ${ratio(without.streamMs, withBalancing.streamMs)}`
  );
}
