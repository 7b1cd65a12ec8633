import type { PeerView, RedirectCount } from '../cluster';

/** This node as the feed samples it every tick. */
export interface SelfSample {
  id: string;
  status: string;
  load: number;
  running: number;
  queued: number;
  capacity: number;
  /** Calls run and redirected since start. */
  run: number;
  redirected: number;
  httpUrl: string;
  endpoint: string;
  services: string[];
  redirects: RedirectCount[];
}

/** One node as the page shows it. */
export interface NodeRow {
  id: string;
  /** ONLINE, UNHEALTHY, DRAINING, LEAVING, OFFLINE, UNKNOWN (report over two periods old) or LEFT. */
  status: string;
  self: boolean;
  load: number;
  running: number;
  queued: number;
  capacity: number;
  runPerSec: number;
  redirectedPerSec: number;
  httpUrl: string;
  endpoint: string;
  services: string[];
  /** Age of the node's last report, ms (0 for this node). */
  ageMs: number;
  /** Load at every tick of the last minute, oldest first; null where nothing was known. */
  loads: Array<number | null>;
}

/** Redirects from one node to another for one reason, over the last minute. */
export interface FlowRow {
  from: string;
  to: string;
  reason: string;
  /** Calls per second over the last 10 s. */
  perSec: number;
  /** Calls in the last minute. */
  lastMinute: number;
  /** Time since the last one was seen, ms. */
  agoMs: number;
}

/** What the page draws, from this node's own peer view. */
export interface ClusterSnapshot {
  node: string;
  cluster: string;
  /** Wall time of the snapshot, ms since the epoch. */
  at: number;
  tickMs: number;
  threshold: number;
  nodes: NodeRow[];
  flows: FlowRow[];
}

/** How often the feed samples, ms; the page is as fresh as this. */
export const FEED_TICK_MS = 500;
/** How long the feed remembers (history and redirects), ms. */
const WINDOW_MS = 60_000;
/** Rates are computed over about this long, ms. */
const RATE_WINDOW_MS = 2_000;
const FLOW_RATE_MS = 10_000;

interface Tracked {
  loads: Array<number | null>;
  samples: Array<{ t: number; run: number; red: number }>;
  incarnation: number;
  lastReportAt: number;
  counts?: Map<string, number>;
  /** When its first counts were seen: rates are over the time since, up to 10 s. */
  countingSince?: number;
  last: NodeRow;
  goneAt?: number;
}

interface FlowEvent {
  t: number;
  key: string;
  n: number;
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * Samples this node and its peer view every tick, keeps a minute of load history and of
 * redirects (from the cumulative counts in every report), and hands each snapshot to
 * its listeners (the page's event streams).
 */
export class ClusterFeed {
  private readonly nodes = new Map<string, Tracked>();
  private readonly events: FlowEvent[] = [];
  private readonly listeners = new Set<(s: ClusterSnapshot) => void>();
  private timer?: NodeJS.Timeout;
  private current?: ClusterSnapshot;
  private readonly maxLoads: number;

  constructor(
    private readonly cluster: string,
    private readonly peers: PeerView,
    private readonly self: () => SelfSample,
    private readonly threshold: () => number,
    private readonly tickMs = FEED_TICK_MS,
  ) {
    this.maxLoads = Math.ceil(WINDOW_MS / tickMs);
  }

  /** Starts sampling (unref'd: it never keeps the process alive). */
  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  /** Stops sampling and forgets the subscribers. */
  stop(): void {
    clearInterval(this.timer);
    this.listeners.clear();
  }

  /** The latest snapshot. */
  snapshot(): ClusterSnapshot {
    return this.current ?? this.tick();
  }

  /** Calls `fn` with every new snapshot; returns the unsubscribe function. */
  subscribe(fn: (s: ClusterSnapshot) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Takes one sample of every node now. */
  tick(now = performance.now()): ClusterSnapshot {
    const s = this.self();
    const seen = new Set<string>([s.id]);
    this.observe(s.id, 0, now, s.run, s.redirected, s.redirects, {
      id: s.id,
      status: s.status,
      self: true,
      load: s.load,
      running: s.running,
      queued: s.queued,
      capacity: s.capacity,
      httpUrl: s.httpUrl,
      endpoint: s.endpoint,
      services: s.services,
      ageMs: 0,
    });
    for (const p of this.peers.peers) {
      seen.add(p.nodeId);
      const status = this.peers.displayStatus(p, now);
      const known = status !== 'OFFLINE' && status !== 'UNKNOWN';
      this.observe(p.nodeId, p.incarnation, p.receivedAt, p.callsRun, p.callsRedirected, p.redirects, {
        id: p.nodeId,
        status,
        self: false,
        load: known ? p.load : 0,
        running: known ? p.inFlight : 0,
        queued: known ? p.queued : 0,
        capacity: p.capacity,
        httpUrl: p.httpUrl,
        endpoint: p.endpoint,
        services: [...p.services],
        ageMs: Math.round(now - p.receivedAt),
      });
    }
    for (const [id, t] of this.nodes) {
      if (seen.has(id)) continue;
      // Gone from the view (left, or forgotten while off-line): shown a minute more, then dropped.
      t.goneAt ??= now;
      if (now - t.goneAt > WINDOW_MS) {
        this.nodes.delete(id);
        continue;
      }
      t.last = { ...t.last, status: t.last.status === 'OFFLINE' ? 'OFFLINE' : 'LEFT', load: 0, running: 0, queued: 0, runPerSec: 0, redirectedPerSec: 0 };
      push(t.loads, null, this.maxLoads);
    }
    while (this.events.length > 0 && now - this.events[0].t > WINDOW_MS) this.events.shift();
    const snapshot: ClusterSnapshot = {
      node: s.id,
      cluster: this.cluster,
      at: Date.now(),
      tickMs: this.tickMs,
      threshold: this.threshold(),
      nodes: [...this.nodes.values()].map((t) => ({ ...t.last, loads: t.loads })).sort((a, b) => a.id.localeCompare(b.id)),
      flows: this.flows(now),
    };
    this.current = snapshot;
    for (const fn of this.listeners) fn(snapshot);
    return snapshot;
  }

  // One sample of one node; `reportAt` changes when a new report (or, for this node, a tick) came.
  private observe(id: string, incarnation: number, reportAt: number, run: number, red: number, counts: RedirectCount[], row: Omit<NodeRow, 'runPerSec' | 'redirectedPerSec' | 'loads'>): void {
    let t = this.nodes.get(id);
    if (!t || t.incarnation !== incarnation) {
      // A restarted node counts from zero again: its earlier counts say nothing now.
      const loads = t?.loads ?? [];
      t = { loads, samples: [], incarnation, lastReportAt: -1, last: { ...row, runPerSec: 0, redirectedPerSec: 0, loads } };
      this.nodes.set(id, t);
    }
    t.goneAt = undefined;
    if (reportAt !== t.lastReportAt) {
      t.lastReportAt = reportAt;
      t.samples.push({ t: reportAt, run, red });
      while (t.samples.length > 2 && reportAt - t.samples[1].t >= RATE_WINDOW_MS) t.samples.shift();
      this.countFlows(t, id, counts, reportAt);
    }
    const first = t.samples[0];
    const last = t.samples[t.samples.length - 1];
    const dt = (last.t - first.t) / 1000;
    const live = row.status !== 'OFFLINE' && row.status !== 'UNKNOWN';
    t.last = {
      ...row,
      load: round(row.load),
      runPerSec: live && dt > 0 ? Math.round((last.run - first.run) / dt) : 0,
      redirectedPerSec: live && dt > 0 ? Math.round((last.red - first.red) / dt) : 0,
      loads: t.loads,
    };
    push(t.loads, live ? round(row.load) : null, this.maxLoads);
  }

  private countFlows(t: Tracked, from: string, counts: RedirectCount[], at: number): void {
    const before = t.counts;
    t.counts = new Map(counts.map((c) => [`${from}\u0000${c.toNode}\u0000${c.reason}`, c.count]));
    // The first counts of a node are where it stood: only what changes after is recent.
    if (!before) {
      t.countingSince = at;
      return;
    }
    for (const [key, n] of t.counts) {
      const d = n - (before.get(key) ?? 0);
      if (d > 0) this.events.push({ t: at, key, n: d });
    }
  }

  private flows(now: number): FlowRow[] {
    const byKey = new Map<string, FlowRow>();
    for (const e of this.events) {
      const [from, to, reason] = e.key.split('\u0000');
      const row = byKey.get(e.key) ?? { from, to, reason, perSec: 0, lastMinute: 0, agoMs: 0 };
      row.lastMinute += e.n;
      const since = this.nodes.get(from)?.countingSince ?? now - FLOW_RATE_MS;
      const windowMs = Math.max(this.tickMs, Math.min(FLOW_RATE_MS, now - since));
      if (now - e.t <= windowMs) row.perSec += e.n / (windowMs / 1000);
      row.agoMs = Math.max(0, Math.round(now - e.t));
      byKey.set(e.key, row);
    }
    return [...byKey.values()].map((r) => ({ ...r, perSec: round(r.perSec, 1) })).sort((a, b) => b.perSec - a.perSec || a.agoMs - b.agoMs);
  }
}

function push(loads: Array<number | null>, v: number | null, max: number): void {
  loads.push(v);
  if (loads.length > max) loads.shift();
}
