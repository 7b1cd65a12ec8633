/** The drawing pieces latest.svg's panels share: text, axes, legends, a chart of ratios. */

/** Width of the whole chart. */
export const W = 1200;
/** A colour per node (n1 first), and the colour of failed calls. */
export const NODE_COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b'];
export const FAILED = '#d62728';
const FONT = 'font-family="Helvetica, Arial, sans-serif"';
const SERIES_COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A text element. */
export function text(x: number, y: number, s: string, o: { size?: number; anchor?: string; weight?: string; fill?: string } = {}): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${FONT} font-size="${o.size ?? 11}" text-anchor="${o.anchor ?? 'start'}" font-weight="${o.weight ?? 'normal'}" fill="${o.fill ?? '#222'}">${esc(s)}</text>`;
}

/** A "nice" upper bound for an axis. */
export function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** A row of line samples with their names. */
export function legend(x: number, y: number, items: Array<{ name: string; color: string; dash?: boolean }>): string {
  let cx = x;
  return items
    .map((it) => {
      const s =
        `<line x1="${cx}" x2="${cx + 18}" y1="${y - 4}" y2="${y - 4}" stroke="${it.color}" stroke-width="2"${it.dash ? ' stroke-dasharray="4,2"' : ''}/>` +
        text(cx + 22, y, it.name, { size: 11 });
      cx += 30 + it.name.length * 6.2;
      return s;
    })
    .join('\n');
}

/**
 * Ratios over a few named x positions, one line per series (NaN leaves a gap), a dashed
 * line at `target`; the legend goes under the axis.
 */
export function ratioChart(
  x: number,
  y: number,
  w: number,
  h: number,
  title: string,
  xLabels: string[],
  series: Array<{ name: string; values: number[]; dash?: boolean }>,
  target?: number,
  targetLabel = `target ${target}`,
): string {
  const out: string[] = [text(x + w / 2, y + 14, title, { anchor: 'middle', size: 13, weight: 'bold' })];
  const px = x + 50;
  const py = y + 30;
  const pw = w - 70;
  const ph = h - 90;
  const vals = series.flatMap((s) => s.values).filter(Number.isFinite);
  const top = niceMax(Math.max(2, ...vals));
  const sx = (i: number) => px + (xLabels.length === 1 ? pw / 2 : (i / (xLabels.length - 1)) * pw);
  const sy = (v: number) => py + ph - (Math.min(v, top) / top) * ph;
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    out.push(`<line x1="${px}" x2="${px + pw}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" stroke="#ddd" stroke-width="0.5"/>`);
    out.push(text(px - 4, sy(v) + 3, v.toFixed(1), { anchor: 'end', size: 9, fill: '#666' }));
  }
  if (target !== undefined) {
    out.push(`<line x1="${px}" x2="${px + pw}" y1="${sy(target).toFixed(1)}" y2="${sy(target).toFixed(1)}" stroke="#2ca02c" stroke-dasharray="5,3"/>`);
    out.push(text(px + pw - 2, sy(target) - 3, targetLabel, { anchor: 'end', size: 9, fill: '#2ca02c' }));
  }
  xLabels.forEach((l, i) => out.push(text(sx(i), py + ph + 14, l, { anchor: 'middle', size: 10 })));
  out.push(`<rect x="${px}" y="${py}" width="${pw}" height="${ph}" fill="none" stroke="#bbb"/>`);
  series.forEach((s, si) => {
    const color = SERIES_COLORS[si % SERIES_COLORS.length];
    const pts = s.values.map((v, i) => [i, v] as const).filter(([, v]) => Number.isFinite(v)).map(([i, v]) => `${sx(i).toFixed(1)},${sy(v).toFixed(1)}`);
    out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${color}" stroke-width="2"${s.dash ? ' stroke-dasharray="5,3"' : ''}/>`);
    for (const pt of pts) {
      const [cx, cy] = pt.split(',');
      out.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`);
    }
  });
  out.push(legend(px, py + ph + 34, series.map((s, si) => ({ name: s.name, color: SERIES_COLORS[si % SERIES_COLORS.length], dash: s.dash }))));
  return out.join('\n');
}
