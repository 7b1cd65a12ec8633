/**
 * latest.svg: the figures a person would rather look at. Hand-written SVG, no dependencies:
 * calls run per node over time (skew), how each rule degrades with older reports (stale),
 * calls served through a control-plane outage, p99 of every system of every scenario, and
 * how far the balancing clients fall behind the anchors as the cluster fills up (saturation).
 */
import type { Row, ScenarioResult, Timeline } from '../scenarios/types';
import { median } from '../lib/histogram';
import { cellsOf, perRepeat } from './saturation';
import { FAILED, legend, NODE_COLORS, niceMax, ratioChart, text, W } from './svg-kit';

interface Line {
  name: string;
  values: number[];
  color: string;
  dash?: boolean;
}

/** A small line chart of calls/s over time. */
function timeChart(x: number, y: number, w: number, h: number, title: string, t: Timeline, lines: Line[], yMax?: number, shade?: [number, number]): string {
  const out: string[] = [];
  const px = x + 44;
  const pw = w - 54;
  const ph = h - 40 - (title.includes('\n') ? 12 : 0);
  const len = Math.max(1, ...lines.map((l) => l.values.length));
  const top = yMax ?? niceMax(Math.max(1, ...lines.flatMap((l) => l.values)));
  const [head, sub] = title.split('\n');
  out.push(text(x + w / 2, y + 11, head, { anchor: 'middle', weight: 'bold', size: 12 }));
  if (sub) out.push(text(x + w / 2, y + 24, sub, { anchor: 'middle', size: 10, fill: '#444' }));
  const py = y + (sub ? 30 : 18);
  const sx = (i: number) => px + (i / len) * pw;
  const sy = (v: number) => py + ph - (Math.min(v, top) / top) * ph;
  if (shade) {
    const a = px + (shade[0] / t.bucketMs / len) * pw;
    const b = px + (shade[1] / t.bucketMs / len) * pw;
    out.push(`<rect x="${a.toFixed(1)}" y="${py}" width="${Math.max(0, b - a).toFixed(1)}" height="${ph}" fill="#f3f3f3"/>`);
  }
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    out.push(`<line x1="${px}" x2="${px + pw}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" stroke="#ddd" stroke-width="0.5"/>`);
    out.push(text(px - 4, sy(v) + 3, String(Math.round(v)), { anchor: 'end', size: 9, fill: '#666' }));
  }
  const seconds = (len * t.bucketMs) / 1000;
  for (let s = 0; s <= seconds; s += seconds > 12 ? 2 : 1) {
    const xx = px + ((s * 1000) / t.bucketMs / len) * pw;
    out.push(text(xx, py + ph + 12, `${s}s`, { anchor: 'middle', size: 9, fill: '#666' }));
  }
  for (const m of t.marks) {
    if (m.label === 'window' || m.label === 'end') continue;
    const xx = px + (m.atMs / t.bucketMs / len) * pw;
    out.push(`<line x1="${xx.toFixed(1)}" x2="${xx.toFixed(1)}" y1="${py}" y2="${py + ph}" stroke="#999" stroke-dasharray="3,3"/>`);
    out.push(text(xx + 3, py + 10, m.label, { size: 9, fill: '#666' }));
  }
  out.push(`<rect x="${px}" y="${py}" width="${pw}" height="${ph}" fill="none" stroke="#bbb"/>`);
  for (const l of lines) {
    if (l.values.length === 0) continue;
    // Each bucket drawn at its middle.
    const pts = l.values.map((v, i) => `${((sx(i) + sx(i + 1)) / 2).toFixed(1)},${sy(v).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${pts}" fill="none" stroke="${l.color}" stroke-width="1.6"${l.dash ? ' stroke-dasharray="4,2"' : ''}/>`);
  }
  return out.join('\n');
}

/** Panel A: per-node calls over time for every system of the skew scenario. */
function skewPanel(y: number, r: ScenarioResult | undefined): { svg: string; h: number } {
  if (!r || Object.keys(r.timelines).length === 0) return { svg: '', h: 0 };
  const order = ['none', 'ideal', 'nats-qg', ...Object.keys(r.timelines).filter((k) => k.startsWith('pb:')).sort()];
  const cols = 3;
  const cw = W / cols;
  const ch = 200;
  const ids = order.filter((k) => r.timelines[k]);
  const top = niceMax(Math.max(1, ...ids.flatMap((k) => Object.entries(r.timelines[k].series).filter(([n]) => n !== 'failed').flatMap(([, v]) => v))));
  const out: string[] = [
    text(20, y + 16, 'Calls run per node over time: all traffic enters at n1 (scenario 3, last run; grey = measured window)', { size: 15, weight: 'bold' }),
    legend(20, y + 38, [
      ...['n1', 'n2', 'n3'].map((n, i) => ({ name: n, color: NODE_COLORS[i] })),
      { name: 'failed (rejected / timed out)', color: FAILED, dash: true },
    ]),
  ];
  ids.forEach((k, i) => {
    const t = r.timelines[k];
    const row = r.rows.find((x) => x.id === k);
    const p99 = row ? `\np99 ${fmt(row.metrics.p99)} ms, ${Math.round(row.metrics.throughput)} calls/s served` : '';
    const lines: Line[] = Object.entries(t.series).map(([name, values]) =>
      name === 'failed' ? { name, values, color: FAILED, dash: true } : { name, values, color: NODE_COLORS[Number(name.slice(1)) - 1] ?? '#000' },
    );
    const win = t.marks.find((m) => m.label === 'window')?.atMs ?? 0;
    const end = t.marks.find((m) => m.label === 'end')?.atMs ?? 0;
    out.push(timeChart((i % cols) * cw + 5, y + 48 + Math.floor(i / cols) * ch, cw - 10, ch - 8, `${t.title}${p99}`, t, lines, top, [win, end]));
  });
  return { svg: out.join('\n'), h: 56 + Math.ceil(ids.length / cols) * ch };
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '–';
  return v >= 100 ? String(Math.round(v)) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** Panel B: p99 / ideal against report period, one line per rule (stale). */
function stalePanel(x: number, y: number, w: number, h: number, r: ScenarioResult | undefined): string {
  if (!r) return '';
  const rows = r.rows.filter((row) => row.id.includes('@'));
  const rules = [...new Set(rows.map((row) => row.labels.rule))];
  const periods = [...new Set(rows.map((row) => Number(row.labels.period)))].sort((a, b) => a - b);
  if (periods.length === 0) return '';
  const series = rules.map((rule) => ({
    name: rule,
    values: periods.map((p) => rows.find((row) => row.labels.rule === rule && Number(row.labels.period) === p)?.metrics.p99VsIdeal ?? NaN),
  }));
  return ratioChart(x, y, w, h, "Stale reports: p99 over the ideal's, by report period (scenario 4)", periods.map((p) => `${p} ms`), series, 1.25);
}

/** Panel C: calls served per second through the NATS outage. */
function outagePanel(x: number, y: number, w: number, h: number, r: ScenarioResult | undefined): string {
  const t = r?.timelines.outage;
  if (!t) return '';
  const lines: Line[] = [
    { name: 'peerbroker', values: t.series.peerbroker ?? [], color: '#1f77b4' },
    { name: 'NATS', values: t.series['nats-qg'] ?? [], color: '#ff7f0e' },
  ];
  const down = t.marks.find((m) => m.label === 'NATS down')?.atMs ?? 0;
  const up = t.marks.find((m) => m.label === 'NATS up')?.atMs ?? 0;
  return [
    timeChart(x, y, w, h - 30, 'Control plane down: calls served per second (scenario 7; grey = outage)', t, lines, undefined, [down, up]),
    legend(x + 50, y + h - 8, [
      { name: 'peerbroker (stub → n1)', color: '#1f77b4' },
      { name: 'NATS request-reply, queue group', color: '#ff7f0e' },
    ]),
  ].join('\n');
}

/** Panel E: follower's and stub's p99 over round-robin's by utilization, one chart per workload. */
function saturationPanel(y: number, r: ScenarioResult | undefined): { svg: string; h: number } {
  const cells = r ? cellsOf(r.rows) : [];
  const workloads = [...new Set(cells.map((c) => c.split('/')[0]))];
  if (!r || workloads.length === 0) return { svg: '', h: 0 };
  const w = W / workloads.length;
  const h = 300;
  const out = workloads.map((wl, i) => {
    const mine = cells.filter((c) => c.startsWith(`${wl}/`));
    const points = [...new Set(mine.map((c) => c.split('/')[2]))];
    const gens = [...new Set(mine.map((c) => c.split('/')[1]))];
    const series = ['follower', 'stub'].flatMap((system) =>
      gens.map((g) => ({
        name: `${system}, ${g.slice(1)} gen`,
        dash: system === 'stub',
        values: points.map((p) => median(perRepeat(r, `${wl}/${g}/${p}`, system, 'p99VsRr'))),
      })),
    );
    const title = `Saturation, ${wl}: p99 over round-robin's (median of pairs)`;
    return ratioChart(i * w + 10, y, w - 20, h, title, points.map((p) => `${p} % of capacity`), series, 1, 'as round-robin');
  });
  return { svg: out.join('\n'), h: h + 10 };
}

interface Bar {
  group: string;
  label: string;
  value: number;
  highlight?: boolean;
}

function p99Bars(results: Record<string, ScenarioResult>): Bar[] {
  const bars: Bar[] = [];
  const get = (s: string, id: string): Row | undefined => results[s]?.rows.find((r) => r.id === id);
  const push = (group: string, label: string, row: Row | undefined, key = 'p99', highlight = false) => {
    if (row && Number.isFinite(row.metrics[key])) bars.push({ group, label, value: row.metrics[key], highlight });
  };
  for (const c of [1, 64, 256]) {
    push('1. overhead', `plain grpc-js, ${c} in flight`, get('overhead', `plain@${c}`));
    push('1. overhead', `peerbroker, ${c} in flight`, get('overhead', `peerbroker@${c}`), 'p99', true);
  }
  push('2. redirect', 'direct, 1 in flight', get('redirect', 'direct@1'));
  push('2. redirect', 'redirected once, 1 in flight', get('redirect', 'redirected@1'), 'p99', true);
  for (const row of results.skew?.rows ?? []) push('3. skew', row.labels.system, row, 'p99', row.id.startsWith('pb:'));
  for (const row of results.stale?.rows ?? []) push('4. stale', row.id === 'ideal' ? 'ideal (round-robin)' : `${row.labels.rule} @ ${row.labels.period} ms`, row, 'p99', row.id !== 'ideal');
  for (const row of results.payload?.rows ?? []) push('6. payload', `${row.labels.system}, ${row.labels.size}`, row, 'p99', row.id.startsWith('peerbroker'));
  for (const row of results.outage?.rows ?? []) {
    push('7. outage', `${row.labels.system}, before`, row, 'before:p99', row.id === 'peerbroker');
    push('7. outage', `${row.labels.system}, during`, row, 'outage:p99', row.id === 'peerbroker');
  }
  return bars;
}

/** Panel D: p99 of every system of every scenario, log scale. */
function barsPanel(y: number, results: Record<string, ScenarioResult>): { svg: string; h: number } {
  const bars = p99Bars(results);
  if (bars.length === 0) return { svg: '', h: 0 };
  const rowH = 15;
  const labelW = 330;
  const px = 20 + labelW;
  const pw = W - px - 60;
  const lo = 0.1;
  const hi = niceMax(Math.max(10, ...bars.map((b) => b.value)));
  const sx = (v: number) => px + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * pw;
  const out: string[] = [text(20, y + 16, 'p99 latency per scenario (ms, log scale; peerbroker in blue)', { size: 15, weight: 'bold' })];
  let cy = y + 34;
  const top = cy;
  let group = '';
  const rowsSvg: string[] = [];
  for (const b of bars) {
    if (b.group !== group) {
      group = b.group;
      cy += 6;
      rowsSvg.push(text(20, cy + 11, b.group, { weight: 'bold', size: 11 }));
      cy += rowH;
    }
    rowsSvg.push(text(px - 6, cy + 11, b.label, { anchor: 'end', size: 10 }));
    rowsSvg.push(`<rect x="${px}" y="${cy + 2}" width="${Math.max(1, sx(b.value) - px).toFixed(1)}" height="${rowH - 4}" fill="${b.highlight ? '#1f77b4' : '#aaa'}"/>`);
    rowsSvg.push(text(sx(b.value) + 4, cy + 11, fmt(b.value), { size: 10 }));
    cy += rowH;
  }
  for (let v = lo; v <= hi * 1.0001; v *= 10) {
    out.push(`<line x1="${sx(v).toFixed(1)}" x2="${sx(v).toFixed(1)}" y1="${top}" y2="${cy}" stroke="#ddd"/>`);
    out.push(text(sx(v), cy + 12, `${v >= 1 ? v : v.toFixed(1)} ms`, { anchor: 'middle', size: 9, fill: '#666' }));
  }
  out.push(...rowsSvg);
  return { svg: out.join('\n'), h: cy - y + 24 };
}

/** The whole chart. */
export function renderSvg(results: { generatedAt?: string; scenarios: Record<string, ScenarioResult> }): string {
  const s = results.scenarios;
  const parts: string[] = [];
  let y = 10;
  parts.push(text(20, y + 18, `peerbroker benchmark — ${results.generatedAt ?? ''}`, { size: 18, weight: 'bold' }));
  y += 34;
  const a = skewPanel(y, s.skew);
  parts.push(a.svg);
  y += a.h;
  if (s.stale || s.outage) {
    parts.push(stalePanel(10, y + 10, W / 2 - 20, 280, s.stale));
    parts.push(outagePanel(W / 2 + 10, y + 10, W / 2 - 20, 280, s.outage));
    y += 300;
  }
  const e = saturationPanel(y + 10, s.saturation);
  parts.push(e.svg);
  y += e.h;
  const d = barsPanel(y + 10, s);
  parts.push(d.svg);
  y += d.h + 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Math.round(y)}" viewBox="0 0 ${W} ${Math.round(y)}">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`;
}
