/**
 * The soak's judgement: a least-squares slope of RSS and of open descriptors over the second
 * half of the load, each broker's figures, the reasons to fail, and the summary as text.
 */
import { int, n3 } from '../lib/format';
import type { Counts } from './protocol';
import type { HeapPoint, Sample } from './sampler';

/** What makes the soak fail (see bench/README.md, "Soak", for how these were chosen). */
export interface Thresholds {
  /** Most RSS growth of a broker over the second half of the load, MB per minute. */
  rssSlopeMbPerMin: number;
  /** Most growth of the heap a broker's full GCs leave, over the second half of the load, MB per minute. */
  heapSlopeMbPerMin: number;
  /** Most growth of a broker's open descriptors over the second half of the load, per minute. */
  fdSlopePerMin: number;
  /** Longest time after the load for every broker to say 0 running and 0 queued, ms. */
  settleMs: number;
  /** Shortest second half of the load whose slopes are judged, ms: a shorter one is warm-up (shown, not judged). */
  minSlopeWindowMs: number;
}

/** One process's figures over the run. */
export interface ProcessFigures {
  name: string;
  /** Brokers are judged; the others (nats-server, generators) are shown only. */
  judged: boolean;
  rssMb: { start: number; end: number; after: number; slopePerMin: number };
  fds: { start: number; end: number; after: number; slopePerMin: number };
  threads: { start: number; end: number };
  /**
   * Brokers, main thread (the isolate with the most full GCs; a worker's heap is apart): the heap
   * left by the first and last full GC of the load, its Theil–Sen slope, and how many full GCs ran.
   */
  heapMb?: { start: number; end: number; slopePerMin: number; fullGcs: number };
  /** CPU used during the load, in cores (CPU seconds per second). */
  cores: number;
  /** Brokers: most calls queued (reports) and in flight (`Status`) during the load. */
  maxQueued?: number;
  maxInFlight?: number;
}

/** Slope of `y` over time (per minute) by least squares, on the samples from `fromMs` to `toMs`. */
export function slopePerMin<T extends { t: number }>(samples: T[], y: (s: T) => number, fromMs: number, toMs: number): number {
  const pts = samples.filter((s) => s.t >= fromMs && s.t <= toMs && Number.isFinite(y(s))).map((s) => [s.t / 60_000, y(s)] as const);
  if (pts.length < 3) return NaN;
  const mx = pts.reduce((a, p) => a + p[0], 0) / pts.length;
  const my = pts.reduce((a, p) => a + p[1], 0) / pts.length;
  let num = 0;
  let den = 0;
  for (const [x, v] of pts) {
    num += (x - mx) * (v - my);
    den += (x - mx) ** 2;
  }
  return den > 0 ? num / den : NaN;
}

/**
 * Theil–Sen slope of `y` over time (per minute): the median of the slopes between every two
 * points from `fromMs` to `toMs`. Robust where a few points stray (a GC that ran while no
 * call was in flight); for the sparse, irregular full-GC points.
 */
export function medianSlopePerMin<T extends { t: number }>(points: T[], y: (p: T) => number, fromMs: number, toMs: number): number {
  const pts = points.filter((p) => p.t >= fromMs && p.t <= toMs && Number.isFinite(y(p)));
  if (pts.length < 3) return NaN;
  const slopes: number[] = [];
  for (let i = 0; i < pts.length; i++) {
    for (let j = i + 1; j < pts.length; j++) {
      const dt = (pts[j].t - pts[i].t) / 60_000;
      if (dt > 0) slopes.push((y(pts[j]) - y(pts[i])) / dt);
    }
  }
  slopes.sort((a, b) => a - b);
  const k = slopes.length >> 1;
  return slopes.length % 2 ? slopes[k] : (slopes[k - 1] + slopes[k]) / 2;
}

/** The isolate with the most points: a broker's main thread (its reporter worker rarely runs a full GC). */
function mainIsolate(points: HeapPoint[]): HeapPoint[] {
  const by = new Map<string, HeapPoint[]>();
  for (const p of points) by.set(p.isolate, [...(by.get(p.isolate) ?? []), p]);
  return [...by.values()].sort((a, b) => b.length - a.length)[0] ?? [];
}

/** The figures of one process from its samples; the load ran from `loadStartMs` to `loadEndMs`. */
export function figuresOf(
  name: string,
  samples: Sample[],
  loadStartMs: number,
  loadEndMs: number,
  broker?: { heap: HeapPoint[]; maxQueued: number },
): ProcessFigures {
  const at = (t: number) => samples.find((s) => s.t >= t) ?? samples[samples.length - 1];
  const before = (t: number) => [...samples].reverse().find((s) => s.t <= t) ?? samples[0];
  const start = at(loadStartMs);
  const end = before(loadEndMs);
  const after = samples[samples.length - 1];
  const mid = (loadStartMs + loadEndMs) / 2;
  const during = samples.filter((s) => s.t >= loadStartMs && s.t <= loadEndMs);
  const inFlight = during.map((s) => s.inFlight ?? NaN).filter(Number.isFinite);
  const gcs = mainIsolate(broker?.heap ?? []).filter((p) => p.t >= loadStartMs && p.t <= loadEndMs);
  return {
    name,
    judged: !!broker,
    rssMb: { start: start.rssMb, end: end.rssMb, after: after.rssMb, slopePerMin: slopePerMin(samples, (s) => s.rssMb, mid, loadEndMs) },
    fds: { start: start.fds, end: end.fds, after: after.fds, slopePerMin: slopePerMin(samples, (s) => s.fds, mid, loadEndMs) },
    threads: { start: start.threads, end: end.threads },
    heapMb: broker && {
      start: gcs[0]?.heapMb ?? NaN,
      end: gcs.at(-1)?.heapMb ?? NaN,
      slopePerMin: medianSlopePerMin(gcs, (p) => p.heapMb, mid, loadEndMs),
      fullGcs: gcs.length,
    },
    cores: (end.cpuMs - start.cpuMs) / (end.t - start.t),
    maxQueued: broker?.maxQueued,
    maxInFlight: inFlight.length ? Math.max(...inFlight) : undefined,
  };
}

/** What settling after the load found: how long it took, or what was left when it gave up. */
export interface Settle {
  ok: boolean;
  afterMs: number;
  /** Per broker, at the last look: running + queued (`Status`) and queued (a report sent after the load). */
  last: Record<string, { inFlight: number; queued: number }>;
}

/**
 * How each kind's calls may end. A call held in a node's queue may still run when the episode
 * could not take every slot in time (then `OK`); anything else is a failure of the soak.
 */
const EXPECTED: Record<string, readonly string[]> = {
  cancel: ['CANCELLED', 'OK'],
  'cancel-in-queue': ['CANCELLED', 'OK'],
  'expire-in-queue': ['DEADLINE_EXCEEDED', 'OK'],
  hold: ['OK', 'CANCELLED'],
};

/** Calls that ended in a way their kind should not, by target, kind and outcome, with status details. */
export function unexpected(counts: Record<string, Counts>, details: Record<string, Record<string, string[]>>): string[] {
  const out: string[] = [];
  for (const [target, byKind] of Object.entries(counts)) {
    for (const [kind, byOutcome] of Object.entries(byKind)) {
      for (const [outcome, n] of Object.entries(byOutcome)) {
        if ((EXPECTED[kind] ?? ['OK']).includes(outcome)) continue;
        const why = details[target]?.[`${kind} ${outcome}`] ?? [];
        out.push(`${target} ${kind}: ${int(n)} ended ${outcome}${why.length ? ` (${why.map((d) => `'${d}'`).join(', ')})` : ''}`);
      }
    }
  }
  return out;
}

/** Every reason to fail; empty when the soak passes. */
export function failures(figs: ProcessFigures[], settle: Settle, t: Thresholds, unfinished: number, problems: string[], windowMs: number): string[] {
  const out: string[] = [...problems];
  for (const f of windowMs >= t.minSlopeWindowMs ? figs.filter((x) => x.judged) : []) {
    const rss = f.rssMb.slopePerMin;
    const fds = f.fds.slopePerMin;
    if (!Number.isFinite(rss)) out.push(`${f.name}: too few RSS samples over the second half of the load for a slope`);
    else if (rss > t.rssSlopeMbPerMin) out.push(`${f.name}: RSS grew ${n3(rss)} MB/min over the second half of the load (limit ${t.rssSlopeMbPerMin})`);
    const heap = f.heapMb?.slopePerMin ?? NaN;
    if (!Number.isFinite(heap)) out.push(`${f.name}: too few full GCs over the second half of the load for a heap slope`);
    else if (heap > t.heapSlopeMbPerMin) out.push(`${f.name}: the heap left by full GCs grew ${n3(heap)} MB/min over the second half of the load (limit ${t.heapSlopeMbPerMin})`);
    if (Number.isFinite(fds) && fds > t.fdSlopePerMin) out.push(`${f.name}: open descriptors grew ${n3(fds)}/min over the second half of the load (limit ${t.fdSlopePerMin})`);
  }
  if (!settle.ok) {
    const left = Object.entries(settle.last)
      .filter(([, v]) => v.inFlight !== 0 || v.queued !== 0)
      .map(([k, v]) => `${k} ${v.inFlight} in flight, ${v.queued} queued`);
    out.push(`running/queued not back to 0 within ${t.settleMs} ms after the load: ${left.join('; ')}`);
  }
  if (unfinished > 0) out.push(`${unfinished} calls had not ended when the generators' drain ran out`);
  return out;
}

/** Calls ended by target, kind and outcome, and their total. */
export function callTable(counts: Record<string, Counts>): { lines: string[]; total: number } {
  const lines: string[] = [];
  let total = 0;
  for (const [target, byKind] of Object.entries(counts)) {
    for (const [kind, byOutcome] of Object.entries(byKind).sort()) {
      const n = Object.values(byOutcome).reduce((a, b) => a + b, 0);
      total += n;
      const outcomes = Object.entries(byOutcome)
        .sort((a, b) => b[1] - a[1])
        .map(([o, k]) => `${o} ${int(k)}`)
        .join(', ');
      lines.push(`  ${target.padEnd(8)} ${kind.padEnd(17)} ${int(n).padStart(10)}   ${outcomes}`);
    }
  }
  return { lines, total };
}

const signed = (v: number) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(2)}` : '–');

/** The process table of the summary. */
export function processTable(figs: ProcessFigures[], t: Thresholds, judgeSlopes: boolean): string[] {
  const mark = (f: ProcessFigures, v: number, limit: number) => (f.judged && judgeSlopes ? (Number.isFinite(v) && v <= limit ? ' ✓' : ' ✗') : '');
  const head = ['process', 'RSS MB start→end (after)', 'MB/min', 'heap after GC MB', 'MB/min', 'fds start→end (after)', 'fds/min', 'threads', 'cores', 'max queued', 'max in flight'];
  const rows = figs.map((f) => [
    f.judged ? f.name : `${f.name} (shown only)`,
    `${n3(f.rssMb.start)} → ${n3(f.rssMb.end)} (${n3(f.rssMb.after)})`,
    signed(f.rssMb.slopePerMin) + mark(f, f.rssMb.slopePerMin, t.rssSlopeMbPerMin),
    f.heapMb ? `${n3(f.heapMb.start)} → ${n3(f.heapMb.end)} (${f.heapMb.fullGcs} GCs)` : '',
    f.heapMb ? signed(f.heapMb.slopePerMin) + mark(f, f.heapMb.slopePerMin, t.heapSlopeMbPerMin) : '',
    `${int(f.fds.start)} → ${int(f.fds.end)} (${int(f.fds.after)})`,
    signed(f.fds.slopePerMin) + mark(f, f.fds.slopePerMin, t.fdSlopePerMin),
    `${int(f.threads.start)} → ${int(f.threads.end)}`,
    f.cores.toFixed(2),
    f.maxQueued === undefined ? '' : String(f.maxQueued),
    f.maxInFlight === undefined ? '' : String(f.maxInFlight),
  ]);
  const widths = head.map((_, i) => Math.max(head[i].length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => '  ' + r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
}
