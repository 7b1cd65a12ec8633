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

/** How often the feed samples while a page watches, ms; the page is as fresh as this. */
const FEED_TICK_MS = 500;
/** How long the feed remembers (history and redirects), ms. */
const WINDOW_MS = 60_000;
/** Rates are computed over about this long, ms. */
const RATE_WINDOW_MS = 2_000;
const FLOW_RATE_MS = 10_000;

/** The redirects of one node to one target for one reason. */
interface Flow {
  to: string;
  reason: string;
  /** The count in the node's last report (calls since its start). */
  count: number;
  /** Calls per tick over the last minute, tick `k` in slot `k % length`; made at the flow's first calls. */
  ring?: Float64Array;
  /** The latest tick written in the ring. */
  tick: number;
  /** When its last calls were seen, and when the node last listed it (local ms). */
  lastAt: number;
  listedAt: number;
}

interface Tracked {
  loads: Array<number | null>;
  /** The tick of the last entry of `loads`. */
  loadTick: number;
  samples: Array<{ t: number; run: number; red: number }>;
  incarnation: number;
  lastReportAt: number;
  /** Its redirects, by target and reason. */
  flows: Map<string, Flow>;
  /** The next counts are where the node stands, not recent calls: its first, after a restart or a long gap. */
  baseline: boolean;
  countsAt: number;
  /** When its counts were first taken: rates are over the time since, up to 10 s. */
  countingSince: number;
  last: NodeRow;
  goneAt?: number;
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * Samples this node and its peer view, keeps a minute of load history and of redirects
 * (from the cumulative counts in every report: per node, target and reason, a ring of calls
 * per tick), and hands each snapshot to its listeners (the page's event streams). It ticks
 * only while someone listens; a snapshot asked for meanwhile is taken then.
 */
export class ClusterFeed {
  private readonly nodes = new Map<string, Tracked>();
  private readonly listeners = new Set<(s: ClusterSnapshot) => void>();
  private timer?: NodeJS.Timeout;
  private current?: ClusterSnapshot;
  /** Ticks in the window: the length of every history. */
  private readonly ticks: number;

  constructor(
    private readonly cluster: string,
    private readonly peers: PeerView,
    private readonly self: () => SelfSample,
    private readonly threshold: () => number,
    private readonly tickMs = FEED_TICK_MS,
  ) {
    this.ticks = Math.ceil(WINDOW_MS / tickMs);
  }

  /** Stops sampling and forgets the listeners. */
  stop(): void {
    this.listeners.clear();
    this.halt();
  }

  /** The latest snapshot while sampling; otherwise one taken now. */
  snapshot(): ClusterSnapshot {
    return this.timer && this.current ? this.current : this.tick();
  }

  /** Calls `fn` with every new snapshot, sampling every tick (unref'd) while anyone listens; returns the unsubscribe function. */
  subscribe(fn: (s: ClusterSnapshot) => void): () => void {
    this.listeners.add(fn);
    if (!this.timer) {
      // Sampling starts again: what changed while nobody watched cannot be placed in time, so
      // rates and redirect counts start from here (else the gap's calls would read as "now").
      for (const t of this.nodes.values()) {
        t.samples = [];
        t.lastReportAt = -1; // the next tick takes the last report as the first sample
        t.baseline = true;
      }
      this.timer = setInterval(() => this.tick(), this.tickMs);
      this.timer.unref();
    }
    return () => {
      if (this.listeners.delete(fn) && this.listeners.size === 0) this.halt();
    };
  }

  /** Takes one sample of every node now. */
  tick(now = performance.now()): ClusterSnapshot {
    const tick = Math.floor(now / this.tickMs);
    const s = this.self();
    const seen = new Set<string>([s.id]);
    this.observe(s.id, 0, now, tick, s.run, s.redirected, s.redirects, {
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
      this.observe(p.nodeId, p.incarnation, p.receivedAt, tick, p.callsRun, p.callsRedirected, p.redirects, {
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
      this.record(t, tick, null);
    }
    const snapshot: ClusterSnapshot = {
      node: s.id,
      cluster: this.cluster,
      at: Date.now(),
      tickMs: this.tickMs,
      threshold: this.threshold(),
      nodes: [...this.nodes.values()].map((t) => ({ ...t.last, loads: t.loads })).sort((a, b) => a.id.localeCompare(b.id)),
      flows: this.flows(now, tick),
    };
    this.current = snapshot;
    for (const fn of this.listeners) fn(snapshot);
    return snapshot;
  }

  private halt(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  // One sample of one node; `reportAt` changes when a new report (or, for this node, a tick) came.
  private observe(
    id: string,
    incarnation: number,
    reportAt: number,
    tick: number,
    run: number,
    red: number,
    counts: RedirectCount[],
    row: Omit<NodeRow, 'runPerSec' | 'redirectedPerSec' | 'loads'>,
  ): void {
    let t = this.nodes.get(id);
    if (!t) {
      const loads: Array<number | null> = [];
      t = { loads, loadTick: tick, samples: [], incarnation, lastReportAt: -1, flows: new Map(), baseline: true, countsAt: 0, countingSince: 0, last: { ...row, runPerSec: 0, redirectedPerSec: 0, loads } };
      this.nodes.set(id, t);
    } else if (t.incarnation !== incarnation) {
      // A restarted node counts from zero again: its earlier counts say nothing now.
      t.incarnation = incarnation;
      t.samples = [];
      t.lastReportAt = -1;
      t.baseline = true;
    }
    t.goneAt = undefined;
    if (reportAt !== t.lastReportAt) {
      t.lastReportAt = reportAt;
      const samples = t.samples;
      // Snapshots asked for between ticks add no sample: rates stay over about RATE_WINDOW_MS.
      if (samples.length === 0 || reportAt - samples[samples.length - 1].t >= this.tickMs / 2) {
        samples.push({ t: reportAt, run, red });
        while (samples.length > 2 && reportAt - samples[1].t >= RATE_WINDOW_MS) samples.shift();
      }
      this.countFlows(t, counts, reportAt);
    }
    const first = t.samples[0];
    const last = t.samples[t.samples.length - 1];
    const dt = first === undefined ? 0 : (last.t - first.t) / 1000;
    const live = row.status !== 'OFFLINE' && row.status !== 'UNKNOWN';
    t.last = {
      ...row,
      load: round(row.load),
      runPerSec: live && dt > 0 ? Math.round((last.run - first.run) / dt) : 0,
      redirectedPerSec: live && dt > 0 ? Math.round((last.red - first.red) / dt) : 0,
      loads: t.loads,
    };
    this.record(t, tick, live ? round(row.load) : null);
  }

  // The load at `tick`; ticks nobody sampled (no page open) read as unknown.
  private record(t: Tracked, tick: number, v: number | null): void {
    const loads = t.loads;
    if (loads.length > 0 && tick <= t.loadTick) {
      loads[loads.length - 1] = v;
      return;
    }
    if (loads.length > 0) for (let gap = Math.min(this.ticks, tick - t.loadTick - 1); gap > 0; gap--) loads.push(null);
    loads.push(v);
    t.loadTick = tick;
    if (loads.length > this.ticks) loads.splice(0, loads.length - this.ticks);
  }

  private countFlows(t: Tracked, counts: RedirectCount[], at: number): void {
    // Counts after a gap longer than the window cannot say when in the gap their calls came.
    const baseline = t.baseline || at - t.countsAt > WINDOW_MS;
    for (const c of counts) {
      const key = `${c.toNode}\u0000${c.reason}`;
      let f = t.flows.get(key);
      if (!f) {
        // A target new since the last report: all its calls are recent.
        f = { to: c.toNode, reason: c.reason, count: 0, tick: 0, lastAt: -Infinity, listedAt: at };
        t.flows.set(key, f);
      }
      const d = c.count - f.count;
      f.count = c.count;
      f.listedAt = at;
      if (!baseline && d > 0) this.addCalls(f, d, at);
    }
    if (baseline) {
      t.baseline = false;
      t.countingSince = at;
    }
    t.countsAt = at;
    // A flow the node stopped listing (its 64 counts are the largest) is forgotten after the window.
    for (const [key, f] of t.flows) if (at - f.listedAt > WINDOW_MS && at - f.lastAt > WINDOW_MS) t.flows.delete(key);
  }

  private addCalls(f: Flow, n: number, at: number): void {
    const tick = Math.floor(at / this.tickMs);
    const size = this.ticks;
    if (!f.ring) {
      f.ring = new Float64Array(size);
      f.tick = tick;
    } else if (tick > f.tick) {
      // The slots of the ticks since the last write are a minute old: emptied for reuse.
      for (let k = f.tick + 1; k <= Math.min(tick, f.tick + size); k++) f.ring[k % size] = 0;
      f.tick = tick;
    } else if (f.tick - tick >= size) return;
    f.ring[tick % size] += n;
    f.lastAt = Math.max(f.lastAt, at);
  }

  private flows(now: number, nowTick: number): FlowRow[] {
    const rows: FlowRow[] = [];
    const size = this.ticks;
    for (const [from, t] of this.nodes) {
      const windowMs = Math.max(this.tickMs, Math.min(FLOW_RATE_MS, now - t.countingSince));
      for (const f of t.flows.values()) {
        if (!f.ring || now - f.lastAt > WINDOW_MS) continue;
        let lastMinute = 0;
        let recent = 0;
        for (let tick = f.tick; tick >= 0 && nowTick - tick < size && f.tick - tick < size; tick--) {
          const n = f.ring[tick % size];
          lastMinute += n;
          if ((nowTick - tick) * this.tickMs <= windowMs) recent += n;
        }
        if (lastMinute > 0) {
          rows.push({ from, to: f.to, reason: f.reason, perSec: round(recent / (windowMs / 1000), 1), lastMinute, agoMs: Math.max(0, Math.round(now - f.lastAt)) });
        }
      }
    }
    return rows.sort((a, b) => b.perSec - a.perSec || a.agoMs - b.agoMs);
  }
}
