import { createHash } from 'node:crypto';

/**
 * The live cluster page served at `/`: one file, no asset from anywhere else (the CSP
 * allows only its own inline style and script, by hash, and the node's own event
 * stream). It draws each snapshot of `/peerbroker/events` with DOM calls, never HTML
 * strings, so a node id can never become markup.
 */

const STYLE = `
:root { color-scheme: light; --ok: #1b7f3b; --warn: #b06500; --bad: #c62828; --off: #6b6b6b; --line: #e3e3e3; --ink: #1d1d1f; --soft: #5f6368; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #fafafa; }
header { padding: 16px 24px 8px; }
h1 { font-size: 20px; margin: 0 0 2px; font-weight: 600; }
h2 { font-size: 15px; margin: 24px 0 8px; font-weight: 600; }
.sub { color: var(--soft); }
.live { display: inline-block; width: 9px; height: 9px; border-radius: 50%; background: var(--ok); margin-right: 6px; vertical-align: 1px; }
.stale .live { background: var(--bad); }
main { padding: 0 24px 24px; }
.summary { margin: 8px 0 12px; font-size: 15px; }
.banner { display: none; margin: 8px 0; padding: 8px 12px; background: #fdecea; color: var(--bad); border-radius: 6px; }
.stale .banner { display: block; }
.stale table { opacity: 0.55; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
th, td { text-align: left; padding: 8px 12px; border-bottom: 1px solid var(--line); vertical-align: middle; white-space: nowrap; }
th { font-weight: 600; font-size: 12px; color: var(--soft); text-transform: uppercase; letter-spacing: .03em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:last-child td { border-bottom: none; }
tr.down td { color: var(--off); }
.node { font-weight: 600; }
.node a { color: inherit; }
.me { font-weight: 400; color: var(--soft); font-size: 12px; margin-left: 4px; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: var(--off); }
.pill.ONLINE { background: var(--ok); } .pill.UNHEALTHY, .pill.DRAINING { background: var(--warn); } .pill.OFFLINE { background: var(--bad); }
.why { display: block; font-size: 12px; color: var(--soft); }
.bar { display: inline-block; width: 90px; height: 10px; background: #eee; border-radius: 5px; overflow: hidden; vertical-align: middle; margin-right: 8px; }
.bar i { display: block; height: 100%; background: var(--ok); }
.bar i.high { background: var(--warn); } .bar i.full { background: var(--bad); }
svg.spark { display: block; }
svg.spark .area { fill: rgba(25, 103, 210, .12); } svg.spark .line { fill: none; stroke: #1967d2; stroke-width: 1.5; }
svg.spark .thr { stroke: var(--warn); stroke-dasharray: 3 3; stroke-width: 1; }
svg.spark text { font-size: 9px; fill: var(--soft); }
.empty { color: var(--soft); padding: 12px; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
.arrow { color: var(--soft); padding: 0 4px; }
.thr-key { color: var(--warn); text-transform: none; letter-spacing: 0; font-weight: 400; }
footer { color: var(--soft); font-size: 12px; padding: 0 24px 24px; }
`;

const SCRIPT = `
'use strict';
const $ = (tag, attrs, ...kids) => {
  const el = document.createElementNS(attrs && attrs.svg ? 'http://www.w3.org/2000/svg' : 'http://www.w3.org/1999/xhtml', tag);
  for (const [k, v] of Object.entries(attrs || {})) if (k !== 'svg') el.setAttribute(k, v);
  for (const kid of kids) el.append(kid);
  return el;
};
const fmt = (n) => n.toLocaleString('en-US');
const ago = (ms) => ms < 1000 ? 'just now' : ms < 60000 ? (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + ' s ago' : Math.round(ms / 60000) + ' min ago';

function spark(loads, threshold, perMinute) {
  const W = 200, H = 38, step = W / (perMinute - 1);
  const x0 = W - (loads.length - 1) * step;
  // Load passes 1 when calls queue: the scale grows to show it.
  const top = Math.max(1, ...loads.filter((v) => v !== null));
  const y = (v) => (H - 2 - (v / top) * (H - 4)).toFixed(1);
  let line = '', area = '', open = false, startX = 0, lastX = 0;
  loads.forEach((v, i) => {
    const x = (x0 + i * step).toFixed(1);
    if (v === null) { if (open) area += 'L' + lastX + ' ' + (H - 2) + 'L' + startX + ' ' + (H - 2) + 'Z'; open = false; return; }
    if (!open) { line += 'M' + x + ' ' + y(v); area += 'M' + x + ' ' + y(v); startX = x; open = true; }
    else { line += 'L' + x + ' ' + y(v); area += 'L' + x + ' ' + y(v); }
    lastX = x;
  });
  if (open) area += 'L' + lastX + ' ' + (H - 2) + 'L' + startX + ' ' + (H - 2) + 'Z';
  const s = $('svg', { svg: 1, class: 'spark', width: W + 28, height: H + 10, viewBox: '0 0 ' + (W + 28) + ' ' + (H + 10), role: 'img' });
  s.append($('title', { svg: 1 }, 'load over the last minute, 0 to ' + top.toFixed(1) + '; dashed line: threshold ' + threshold));
  s.append($('line', { svg: 1, x1: 0, x2: W, y1: y(threshold), y2: y(threshold), class: 'thr' }));
  s.append($('path', { svg: 1, d: area || 'M0 0', class: 'area' }));
  s.append($('path', { svg: 1, d: line || 'M0 0', class: 'line' }));
  s.append($('text', { svg: 1, x: W + 3, y: 9 }, top.toFixed(1)));
  s.append($('text', { svg: 1, x: W + 3, y: H }, '0'));
  s.append($('text', { svg: 1, x: 0, y: H + 9 }, '60 s ago'));
  s.append($('text', { svg: 1, x: W - 16, y: H + 9 }, 'now'));
  return s;
}

function nodeRow(n, threshold, perMinute) {
  const down = n.status === 'OFFLINE' || n.status === 'UNKNOWN' || n.status === 'LEFT';
  const name = $('td', { class: 'node' });
  name.append(n.httpUrl && !n.self ? $('a', { href: n.httpUrl + '/' }, n.id) : n.id);
  if (n.self) name.append($('span', { class: 'me' }, '(this page)'));
  const status = $('td', {}, $('span', { class: 'pill ' + n.status }, n.status));
  if (n.status === 'OFFLINE') status.append($('span', { class: 'why' }, 'no report for ' + (n.ageMs / 1000).toFixed(1) + ' s'));
  if (n.status === 'UNKNOWN') status.append($('span', { class: 'why' }, 'last report ' + ago(n.ageMs)));
  if (n.status === 'LEFT') status.append($('span', { class: 'why' }, 'left the cluster'));
  const fill = $('i', { class: n.load >= 0.95 ? 'full' : n.load >= threshold ? 'high' : '' });
  fill.style.width = Math.round(100 * Math.min(1, n.load)) + '%';
  const bar = $('span', { class: 'bar' }, fill);
  const load = $('td', { class: 'load' }, bar, down ? '–' : n.load.toFixed(2));
  return $('tr', { 'data-node': n.id, 'data-status': n.status, class: down ? 'down' : '' },
    name, status, load,
    $('td', { class: 'num busy' }, down ? '–' : n.running + ' + ' + n.queued + ' / ' + n.capacity),
    $('td', { class: 'num run-rate' }, down ? '–' : fmt(n.runPerSec)),
    $('td', { class: 'num redirect-rate' }, down ? '–' : fmt(n.redirectedPerSec)),
    $('td', {}, spark(n.loads, threshold, perMinute)));
}

function render(s) {
  document.body.classList.remove('stale');
  document.getElementById('cluster').textContent = s.cluster;
  document.getElementById('served').textContent = s.node;
  document.getElementById('updated').textContent = new Date(s.at).toLocaleTimeString('en-GB');
  const byStatus = {};
  for (const n of s.nodes) byStatus[n.status] = (byStatus[n.status] || 0) + 1;
  const counts = Object.entries(byStatus).map(([st, k]) => k + ' ' + (st === 'OFFLINE' ? 'off-line' : st.toLowerCase()));
  const run = s.nodes.reduce((a, n) => a + n.runPerSec, 0), red = s.nodes.reduce((a, n) => a + n.redirectedPerSec, 0);
  document.getElementById('summary').textContent = s.nodes.length + ' nodes: ' + counts.join(', ') +
    ' · ' + fmt(run) + ' calls/s run · ' + fmt(red) + ' redirected/s · threshold ' + s.threshold.toFixed(2);
  document.getElementById('nodes').replaceChildren(...s.nodes.map((n) => nodeRow(n, s.threshold, Math.round(60000 / s.tickMs))));
  const flows = document.getElementById('flows');
  if (s.flows.length === 0) {
    flows.replaceChildren($('div', { class: 'empty' }, 'No redirects in the last minute: every call ran on the node it reached.'));
    return;
  }
  const head = $('tr', {}, ...['From → to', 'Reason', 'Now (calls/s)', 'Last minute', 'Last seen'].map((h, i) => $('th', { class: i >= 2 && i <= 3 ? 'num' : '' }, h)));
  const rows = s.flows.slice(0, 12).map((f) => $('tr', { 'data-from': f.from, 'data-to': f.to },
    $('td', { class: 'node' }, f.from, $('span', { class: 'arrow' }, '→'), f.to),
    $('td', {}, f.reason), $('td', { class: 'num' }, f.perSec.toFixed(1)), $('td', { class: 'num' }, fmt(f.lastMinute)), $('td', {}, ago(f.agoMs))));
  flows.replaceChildren($('table', {}, $('thead', {}, head), $('tbody', {}, ...rows)));
}

const events = new EventSource('/peerbroker/events');
events.addEventListener('snapshot', (e) => render(JSON.parse(e.data)));
events.onerror = () => document.body.classList.add('stale');
`;

const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** The page's Content-Security-Policy: its own inline style and script only, events from this origin. */
export const PAGE_CSP = `default-src 'none'; style-src ${hash(STYLE)}; script-src ${hash(SCRIPT)}; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

/** The page's HTML (the live data comes from `/peerbroker/events`). */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>peerbroker cluster</title>
<style>${STYLE}</style>
</head>
<body class="stale">
<header>
<h1>peerbroker cluster <span id="cluster"></span></h1>
<div class="sub"><span class="live"></span>live from node <b id="served">…</b>, as it sees its peers · updated <span id="updated">…</span></div>
</header>
<main>
<div class="banner">Lost the connection to this node; retrying. The figures below are the last ones received.</div>
<div class="summary" id="summary">Waiting for the first snapshot…</div>
<table>
<thead><tr><th>Node</th><th>Status</th><th>Load</th><th class="num">Running + queued / slots</th><th class="num">Run/s</th><th class="num">Redirected/s</th><th>Load, last minute <span class="thr-key">(- - - threshold)</span></th></tr></thead>
<tbody id="nodes"></tbody>
</table>
<h2>Redirects, last minute</h2>
<div id="flows"></div>
</main>
<footer>Each node reports its load to its peers every period; this page shows what this node knows now. Redirect counts come from the nodes' own reports.</footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
