/**
 * A discrete-event simulation of a peerbroker cluster under skewed load, using the real
 * decision (src/policy) and the real peer view with its redirect accounting
 * (src/cluster/peer-view): no sockets, no noise, so rules can be compared exactly.
 *
 *   node dist/bench/sim/sim.js [--rate 400] [--work 50] [--nodes 3] [--capacity 8] ...
 */
import { PeerView } from '../../src/cluster/peer-view';
import type { LoadReport } from '../../src/cluster/report-codec';
import { RoutePlan } from '../../src/client/route-plan';
import { adviseSpread } from '../../src/policy/advice';
import { decide, peerChoiceByName, type CallInfo, type PolicyConfig, type SelfState } from '../../src/policy';
import { urgentGapMs } from '../../src/broker/control-timers';
import { tickMs } from '../../src/cluster/report-filter';
import { seededRandom } from '../lib/random';

// ---- a tiny event heap -----------------------------------------------------------
type Ev = { t: number; seq: number; fn: () => void };
class Heap {
  private a: Ev[] = [];
  private n = 0;
  push(t: number, fn: () => void): void {
    const e = { t, seq: this.n++, fn };
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(a[p], a[i])) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }
  pop(): Ev | undefined {
    const a = this.a;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && less(a[l], a[m])) m = l;
        if (r < a.length && less(a[r], a[m])) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}
const less = (x: Ev, y: Ev) => x.t < y.t || (x.t === y.t && x.seq < y.seq);

export interface SimOptions {
  nodes: number;
  capacity: number;
  maxQueue: number;
  workMs: number;
  /** Uniform extra service time, ms. */
  workJitterMs: number;
  rate: number;
  seconds: number;
  warmupS: number;
  periodMs: number;
  threshold: number;
  margin: number;
  maxHops: number;
  peerChoice: string;
  /** One way client<->node, ms. */
  netMs: number;
  /** Node's time to decide and answer a redirect, ms. */
  redirectMs: number;
  /** How calls are sent: all to n1 following per call, round-robin, or join-shortest-queue. */
  mode: 'follower' | 'rr' | 'jsq' | 'stub';
  /** Stub: one client object per generator; several stubs split the rate. */
  stubs: number;
  /** Reports carry the time-average occupancy since the last report instead of the instant value. */
  reportAverage: boolean;
  /** Print n1's view of its peers every 25 ms for 2 s after the warm-up. */
  trace: boolean;
  /** Which systems the command line runs, comma-separated. */
  modes: string;
  seed: number;
  /** Report on threshold crossings (rate-limited as the broker: `urgentGapMs`). */
  crossingReports: boolean;
  /** Also report when occupancy moved this many slots since the last report (0: never), same rate limit. */
  changeSlots: number;
  /** Minimum gap between two urgent reports, ms (default: the broker's, `urgentGapMs`). */
  urgentGapMs?: number;
  /** Peers' reports reach the decision at the receiver's next tick of this many ms (default: the reporter thread's hand-over, `tickMs`); 0: at once. */
  tickMs?: number;
  /** Accounting forgets the redirects sent between a report's reading and its hand-over (the rule before 2026-11-29). */
  appliedAtRead: boolean;
}

export const DEFAULTS: SimOptions = {
  nodes: 3,
  capacity: 8,
  maxQueue: 32,
  workMs: 50,
  workJitterMs: 1,
  rate: 400,
  seconds: 30,
  warmupS: 3,
  periodMs: 500,
  threshold: 0.5,
  margin: 0.2,
  maxHops: 2,
  peerChoice: 'least-loaded-accounted',
  netMs: 0.1,
  redirectMs: 0.2,
  mode: 'follower',
  seed: 1,
  crossingReports: true,
  changeSlots: 1,
  appliedAtRead: false,
  stubs: 1,
  reportAverage: false,
  trace: false,
  modes: 'rr,jsq,follower,stub',
};

interface Call {
  scheduled: number;
  hops: number;
  stub?: Stub;
  /** The stub asked for advice with this call. */
  ask?: boolean;
  /** The stub spreads by advice (`peerbroker-follow: 2`). */
  advised?: boolean;
}

/** The stub's learned spread: weights over nodes, from the nodes' advice. */
/** A stub: the real routing plan (src/client/route-plan.ts), node ids as endpoints. */
class Stub {
  readonly plan = new RoutePlan('n1');
}

class SimNode {
  running = 0;
  readonly queue: Call[] = [];
  readonly view: PeerView;
  readonly self: SelfState;
  meanCallMs = 0;
  run = 0;
  seq = 0;
  above = false;
  pendingReport = false;
  lastUrgent = -Infinity;
  lastOcc = 0;
  /** Where this node's reporter ticks fall, ms. */
  tickPhase = 0;
  /** Integral of occupancy since the last report, and when it was last updated. */
  area = 0;
  areaAt = 0;
  areaFrom = 0;
  touch(now: number): void {
    this.area += (this.running + this.queued) * (now - this.areaAt);
    this.areaAt = now;
  }
  constructor(
    readonly id: string,
    readonly o: SimOptions,
  ) {
    this.view = new PeerView({ offlineAfterPeriods: 3, forgetAfterMs: 60_000 });
    this.self = { nodeId: id, load: 0, running: 0, queued: 0, capacity: o.capacity, maxQueue: o.maxQueue, hosts: () => true };
  }
  get queued(): number {
    return this.queue.length;
  }
  load(): number {
    return Math.min(1, (this.running + this.queued) / this.o.capacity);
  }
}

export interface SimResult {
  calls: number;
  ok: number;
  rejected: number;
  redirects: number;
  p50: number;
  p99: number;
  p999: number;
  spread: number[];
}

/** Runs one simulation and returns its figures (measured after the warm-up). */
export function simulate(opts: Partial<SimOptions> = {}): SimResult {
  const o = { ...DEFAULTS, ...opts };
  const tick = o.tickMs ?? tickMs(o.periodMs);
  const heap = new Heap();
  const random = seededRandom(o.seed);
  const nodes = Array.from({ length: o.nodes }, (_, i) => new SimNode(`n${i + 1}`, o));
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const cfg: PolicyConfig = { threshold: o.threshold, margin: o.margin, maxHops: o.maxHops, staleAfterPeriods: 2 };
  const choice = peerChoiceByName(o.peerChoice);
  const lat: number[] = [];
  let rejected = 0;
  let redirects = 0;
  let calls = 0;
  const served = nodes.map(() => 0);
  const warm = o.warmupS * 1000;
  const end = (o.seconds + o.warmupS) * 1000;
  let now = 0;
  const wall0 = 1_800_000_000_000;

  const report = (n: SimNode) => {
    n.lastOcc = n.running + n.queued;
    n.touch(now);
    const avg = now > n.areaFrom ? n.area / (now - n.areaFrom) : n.lastOcc;
    n.area = 0;
    n.areaFrom = now;
    const occ = o.reportAverage ? avg : n.lastOcc;
    const r: LoadReport = {
      cluster: 'sim',
      nodeId: n.id,
      endpoint: n.id,
      incarnation: 1,
      seq: ++n.seq,
      sentAtMs: wall0 + now,
      load: Math.min(1, occ / o.capacity),
      inFlight: o.reportAverage ? Math.min(occ, o.capacity) : n.running,
      capacity: o.capacity,
      status: 'ONLINE',
      services: ['s.S'],
      endpoints: [n.id],
      periodMs: o.periodMs,
      queued: o.reportAverage ? Math.max(0, occ - o.capacity) : n.queued,
      loopDelayMs: 0,
      callsRun: n.run,
      callsRedirected: 0,
      maxQueue: o.maxQueue,
    };
    for (const p of nodes) {
      if (p === n) continue;
      const at = now + 0.5;
      // The reporter thread hands reports to the main thread once per tick (its phase is the node's own).
      const t = tick > 0 ? p.tickPhase + Math.ceil((at - p.tickPhase) / tick) * tick : at;
      heap.push(t, () => p.view.apply({ ...r }, now, o.appliedAtRead ? now : at));
    }
  };
  const crossing = (n: SimNode) => {
    const above = n.load() >= o.threshold;
    const crossed = o.crossingReports && above !== n.above;
    n.above = above;
    const moved = o.changeSlots > 0 && Math.abs(n.running + n.queued - n.lastOcc) >= o.changeSlots;
    if (!crossed && !moved) return;
    if (n.pendingReport) return;
    n.pendingReport = true;
    const gap = o.urgentGapMs ?? urgentGapMs(o.periodMs, o.nodes - 1);
    heap.push(Math.max(now, n.lastUrgent + gap), () => {
      n.pendingReport = false;
      n.lastUrgent = now;
      report(n);
    });
  };
  const periodic = (n: SimNode) => {
    report(n);
    heap.push(now + o.periodMs * (0.9 + 0.2 * random()), () => periodic(n));
  };
  for (const n of nodes) {
    n.tickPhase = tick * random();
    heap.push(o.periodMs * random(), () => periodic(n));
  }
  if (o.trace) {
    const trace = () => {
      const n1 = nodes[0];
      const est = n1.view.peers.map((p) => `${p.nodeId} true ${byId.get(p.nodeId)!.running + byId.get(p.nodeId)!.queued} est ${((p.occupancy + p.extra) * o.capacity).toFixed(1)} (rep ${(p.occupancy * o.capacity).toFixed(1)} extra ${(p.extra * o.capacity).toFixed(1)})`);
      console.log(`${now.toFixed(0)} n1 ${n1.running + n1.queued} | ${est.join(' | ')}`);
      if (now < warm + 2000) heap.push(now + 25, trace);
    };
    heap.push(warm, trace);
  }

  const start = (n: SimNode, c: Call) => {
    const dur = o.workMs + o.workJitterMs * random();
    heap.push(now + dur, () => {
      n.meanCallMs = n.meanCallMs === 0 ? dur : n.meanCallMs * 0.95 + dur * 0.05;
      n.touch(now);
      n.running--;
      n.run++;
      const t = now + o.netMs;
      if (c.scheduled >= warm) {
        lat.push(t - c.scheduled);
        served[nodes.indexOf(n)]++;
      }
      const next = n.queue.shift();
      if (next) {
        n.running++;
        start(n, next);
      }
      crossing(n);
    });
  };
  const admit = (n: SimNode, c: Call) => {
    n.touch(now);
    if (n.running < o.capacity) {
      n.running++;
      start(n, c);
    } else n.queue.push(c);
    crossing(n);
  };
  const info: CallInfo = { path: '/s.S/M', service: 's.S', hops: 0, follows: true, advised: false, session: '', sessionOwner: '' };
  const arrive = (n: SimNode, c: Call, follows: boolean) => {
    info.hops = c.hops;
    info.follows = follows;
    info.advised = c.advised === true;
    const s = n.self;
    s.load = (n.running + n.queued) / o.capacity;
    s.running = n.running;
    s.queued = n.queued;
    const tau = n.meanCallMs > 0 ? n.meanCallMs : o.periodMs;
    n.view.fadeExtras(now, tau);
    const d = decide(info, s, n.view.peers, cfg, choice, now);
    // A redirect carries advice; so does a local answer the stub asked for (src/broker/advice-cache.ts).
    if (c.stub && (d.kind === 'redirect' || c.ask)) {
      const plan = c.stub.plan;
      const shares = adviseSpread(s, n.id, n.view.peers, 's.S', now, cfg, choice).map((x) => ({ endpoint: x.nodeId, share: x.share }));
      const ttlMs = 20 * o.periodMs;
      if (shares.length > 0) heap.push(now + o.netMs, () => plan.apply({ ttlMs, shares }, now, () => true));
    }
    if (d.kind === 'local') return admit(n, c);
    if (d.kind === 'reject') {
      if (c.scheduled >= warm) rejected++;
      return;
    }
    n.view.account(d.peer, now, tau);
    if (c.scheduled >= warm) redirects++;
    const target = byId.get(d.peer.nodeId)!;
    heap.push(now + o.redirectMs + 2 * o.netMs, () => arrive(target, { scheduled: c.scheduled, hops: c.hops + 1, stub: c.stub, advised: c.advised }, follows));
  };

  const stubs = Array.from({ length: o.stubs }, () => new Stub());
  // Poisson arrivals.
  let rr = 0;
  let t = 0;
  for (;;) {
    t += (-Math.log(1 - random()) * 1000) / o.rate;
    if (t >= end) break;
    const at = t;
    heap.push(at, () => {
      const c: Call = { scheduled: at, hops: 0 };
      if (at >= warm) calls++;
      if (o.mode === 'follower') return heap.push(now + o.netMs, () => arrive(nodes[0], c, true));
      if (o.mode === 'stub') {
        const st = stubs[Math.floor(random() * stubs.length)];
        c.stub = st;
        c.ask = st.plan.wantsAdvice(now);
        c.advised = st.plan.holds(now);
        const target = byId.get(st.plan.next(now))!;
        return heap.push(now + o.netMs, () => arrive(target, c, true));
      }
      let n: SimNode;
      if (o.mode === 'rr') n = nodes[rr++ % nodes.length];
      else {
        n = nodes[0];
        for (const m of nodes) if (m.running + m.queued < n.running + n.queued) n = m;
      }
      heap.push(now + o.netMs, () => arrive(n, c, false));
    });
  }
  for (let e = heap.pop(); e; e = heap.pop()) {
    now = e.t;
    if (now > end + 10_000) break;
    e.fn();
  }
  lat.sort((a, b) => a - b);
  const q = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN);
  const okCount = lat.length;
  return {
    calls,
    ok: okCount,
    rejected,
    redirects,
    p50: q(0.5),
    p99: q(0.99),
    p999: q(0.999),
    spread: served.map((s) => s / Math.max(1, okCount)),
  };
}

function parse(argv: string[]): Partial<SimOptions> {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const v = argv[i + 1];
    o[k] = v === 'true' ? true : v === 'false' ? false : Number.isNaN(Number(v)) ? v : Number(v);
  }
  return o as Partial<SimOptions>;
}

if (require.main === module) {
  const o = parse(process.argv.slice(2));
  const utils = (o.rate ?? DEFAULTS.rate) * ((o.workMs ?? DEFAULTS.workMs) + 0.5) / 1000 / ((o.nodes ?? 3) * (o.capacity ?? 8));
  const fmt = (r: SimResult) =>
    `p50 ${r.p50.toFixed(1)} p99 ${r.p99.toFixed(1)} p99.9 ${r.p999.toFixed(1)} rej ${((100 * r.rejected) / r.calls).toFixed(2)}% ` +
    `redir/call ${(r.redirects / r.calls).toFixed(2)} spread ${r.spread.map((s) => (100 * s).toFixed(0)).join('/')}`;
  const seeds = [1, 2, 3];
  console.log(`utilization ${(100 * utils).toFixed(0)} %`);
  for (const mode of String(o.modes ?? DEFAULTS.modes).split(',') as SimOptions['mode'][]) {
    const rs = seeds.map((seed) => simulate({ ...o, mode, seed }));
    const med = (f: (r: SimResult) => number) => rs.map(f).sort((a, b) => a - b)[1];
    console.log(
      `${mode.padEnd(9)} p99 ${med((r) => r.p99).toFixed(1)} (${rs.map((r) => r.p99.toFixed(0)).join(',')})  ` + fmt(rs[1]),
    );
  }
}
