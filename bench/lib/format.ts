import type { Summary } from './load';
import type { Row } from '../scenarios/types';

/** A Markdown table. */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.map(String).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

/** A number with about three significant digits; `–` for NaN. */
export function n3(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 100) return Math.round(v).toLocaleString('en-US');
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return '0';
  return v.toPrecision(2);
}

/** A ratio, two decimals, with a mark if it misses `limit` in the direction `better`. */
export function ratio(v: number | undefined, limit?: number, better: 'low' | 'high' = 'low'): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  const s = v.toFixed(2);
  if (limit === undefined) return s;
  const ok = better === 'low' ? v <= limit : v >= limit;
  return ok ? `${s} ✓` : `**${s} ✗**`;
}

/**
 * `ratio()` of `m[key]`, followed by its min–max over the runs when the runner kept them
 * (`<key>Min`, `<key>Max`: see medianRows in run.ts), e.g. `1.03 ✓ (0.98–1.10)`.
 */
export function spread(m: Record<string, number>, key: string, limit?: number, better: 'low' | 'high' = 'low'): string {
  const text = ratio(m[key], limit, better);
  const lo = m[`${key}Min`];
  const hi = m[`${key}Max`];
  return lo === undefined || hi === undefined ? text : `${text} (${lo.toFixed(2)}–${hi.toFixed(2)})`;
}

/** Integer with thousands separators. */
export function int(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? '–' : Math.round(v).toLocaleString('en-US');
}

/** Percent, no decimals. */
export function pct(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? '–' : `${Math.round(v)} %`;
}

/** The row with this id, or an empty one. */
export function rowOf(rows: Row[], id: string): Row {
  return rows.find((r) => r.id === id) ?? { id, labels: {}, metrics: {} };
}

/**
 * The common figures of a load summary, as row metrics. `serverCpuMs` is the servers' CPU
 * in the window; `otherCores` the machine's CPU used by anything else meanwhile.
 */
export function loadMetrics(s: Summary, serverCpuMs: number, otherCores: number, extraCpuMs: Record<string, number> = {}): Record<string, number> {
  const m: Record<string, number> = {
    throughput: s.throughput,
    p50: s.p50,
    p99: s.p99,
    p999: s.p999,
    errorsPerSec: s.errorsPerSec,
    skippedPerSec: s.skippedPerSec,
    clientCpuPct: (100 * s.clientCpuMs) / s.windowMs,
    serverCpuPct: (100 * serverCpuMs) / s.windowMs,
    callsPerClientCpuS: s.okCalls / (s.clientCpuMs / 1000),
    callsPerServerCpuS: s.okCalls / (serverCpuMs / 1000),
    callsPerCpuS: s.okCalls / ((s.clientCpuMs + serverCpuMs) / 1000),
    generators: s.generators,
    redirectsPerCall: s.redirectsPerCall,
    otherCores,
  };
  for (const [k, v] of Object.entries(extraCpuMs)) m[`${k}CpuPct`] = (100 * v) / s.windowMs;
  return m;
}
