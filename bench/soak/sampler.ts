/**
 * What the soak watches, about every second: each process's RSS, open file descriptors and
 * threads from /proc, and each broker's own view over gRPC (`Status`: calls running and
 * queued) and over NATS (its load reports: calls queued). Brokers run with `--trace-gc`
 * (`GC_TRACE_ARGS`): the heap each full GC leaves is what their JS really holds.
 */
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from 'nats';
import { isRejected, loadSubject, openReport, type LoadReport } from '../../src/cluster';
import { brokerProto } from '../../src/transport';
import type { BrokerClient } from '../../src/generated/peerbroker/v1/Broker';
import type { StatusResponse__Output } from '../../src/generated/peerbroker/v1/StatusResponse';
import { cpuMs, onLine, type Child } from '../lib/proc';

/** A process the soak watches; a broker also has its endpoint, cluster, node id and process. */
export interface Watched {
  name: string;
  pid: number;
  broker?: { endpoint: string; cluster: string; nodeId: string; child: Child };
}

/** Node flags of the brokers: one line per full GC (mark-compact), none per scavenge. */
export const GC_TRACE_ARGS = ['--trace-gc', '--trace-gc-ignore-scavenger'];
/**
 * V8's line for a full GC: `[pid:0x2a4b7a0]  4554 ms: Mark-Compact 64.1 (94.3) -> 18.2 (70.3) MB, ...`
 * (heap used (committed) before -> after). The address names the isolate: the main thread's,
 * or a worker's (the reporter thread has its own heap).
 */
const FULL_GC = /^\[\d+:(0x[0-9a-f]+)\]\s+[\d.]+ ms: Mark-Compact(?: \(reduce\))? [\d.]+ \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB/;

/** The heap a full GC left in one isolate, MB, at `t` (ms since the sampler started). */
export interface HeapPoint {
  t: number;
  isolate: string;
  heapMb: number;
}

/** One sample of one process; NaN where it could not be read. */
export interface Sample {
  /** ms since the sampler started. */
  t: number;
  rssMb: number;
  fds: number;
  threads: number;
  /** CPU used since the process started (all threads), ms. */
  cpuMs: number;
  /** Broker only: calls running plus queued (`Status`), and queued (its latest report). */
  inFlight?: number;
  queued?: number;
}

/** How long a `Status` call may take before the sample goes without it, ms. */
const STATUS_DEADLINE_MS = 900;

/** RSS (MB), open descriptors, threads and CPU of `pid`, read from /proc; NaN when it is gone. */
export function readProc(pid: number): Omit<Sample, 't'> {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMb: field('VmRSS') / 1024, fds: fs.readdirSync(`/proc/${pid}/fd`).length, threads: field('Threads'), cpuMs: cpuMs(pid) };
  } catch {
    return { rssMb: NaN, fds: NaN, threads: NaN, cpuMs: NaN };
  }
}

/** Samples every watched process on a timer and keeps every broker's latest load report. */
export class Sampler {
  readonly samples: Record<string, Sample[]> = {};
  /** Per broker: the heap left by each full GC, of every isolate. */
  readonly heap: Record<string, HeapPoint[]> = {};
  private readonly unsubscribe: Array<() => void> = [];
  /** Most calls queued any report of each broker said, since `resetMaxQueued()`. */
  readonly maxQueued: Record<string, number> = {};
  private readonly reports = new Map<string, LoadReport>();
  private readonly clients = new Map<string, BrokerClient>();
  private nc?: NatsConnection;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly t0 = performance.now();

  constructor(
    private readonly watched: Watched[],
    private readonly natsUrl: string,
  ) {}

  private get brokers(): Array<Watched & { broker: NonNullable<Watched['broker']> }> {
    return this.watched.filter((w): w is Watched & { broker: NonNullable<Watched['broker']> } => !!w.broker);
  }

  /** Connects to every broker and to NATS, then samples every `everyMs`. */
  async start(everyMs: number): Promise<void> {
    const Broker = brokerProto().peerbroker.v1.Broker;
    for (const w of this.brokers) this.clients.set(w.name, new Broker(w.broker.endpoint, grpc.credentials.createInsecure()));
    this.nc = await connect({ servers: this.natsUrl, name: 'soak-sampler' });
    for (const cluster of new Set(this.brokers.map((w) => w.broker.cluster))) {
      const prefix = loadSubject(cluster, '');
      this.nc.subscribe(`${prefix}*`, { callback: (err, msg) => !err && this.onReport(cluster, msg.data) });
    }
    for (const w of this.watched) this.samples[w.name] = [];
    for (const w of this.brokers) {
      const points: HeapPoint[] = (this.heap[w.name] = []);
      this.unsubscribe.push(
        onLine(w.broker.child, (line) => {
          const m = FULL_GC.exec(line);
          if (m) points.push({ t: this.now(), isolate: m[1], heapMb: Number(m[2]) });
        }),
      );
    }
    const tick = () =>
      void this.sampleAll().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, everyMs);
      });
    tick();
  }

  private onReport(cluster: string, data: Uint8Array): void {
    const r = openReport(data, undefined);
    if (isRejected(r)) return;
    const w = this.brokers.find((b) => b.broker.cluster === cluster && b.broker.nodeId === r.nodeId);
    if (!w) return;
    const prev = this.reports.get(w.name);
    if (prev && prev.incarnation === r.incarnation && prev.seq >= r.seq) return;
    this.reports.set(w.name, r);
    this.maxQueued[w.name] = Math.max(this.maxQueued[w.name] ?? 0, r.queued);
  }

  /** Forgets the most queued seen so far (the load starts). */
  resetMaxQueued(): void {
    for (const k of Object.keys(this.maxQueued)) this.maxQueued[k] = 0;
  }

  /** ms since the sampler started. */
  now(): number {
    return performance.now() - this.t0;
  }

  /** The broker's `Status` answer; undefined when it does not answer in time. */
  status(name: string): Promise<StatusResponse__Output | undefined> {
    const c = this.clients.get(name);
    if (!c) return Promise.resolve(undefined);
    return new Promise((resolve) => c.Status({}, { deadline: Date.now() + STATUS_DEADLINE_MS }, (err, res) => resolve(err ? undefined : res)));
  }

  /** The broker's latest load report, if one came. */
  report(name: string): LoadReport | undefined {
    return this.reports.get(name);
  }

  private async sampleAll(): Promise<void> {
    const t = this.now();
    await Promise.all(
      this.watched.map(async (w) => {
        const s: Sample = { t, ...readProc(w.pid) };
        if (w.broker) {
          s.inFlight = (await this.status(w.name))?.self?.inFlight ?? NaN;
          s.queued = this.reports.get(w.name)?.queued ?? NaN;
        }
        this.samples[w.name].push(s);
      }),
    );
  }

  /** Stops sampling and closes its connections. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    for (const off of this.unsubscribe) off();
    for (const c of this.clients.values()) c.close();
    await this.nc?.close();
  }
}
