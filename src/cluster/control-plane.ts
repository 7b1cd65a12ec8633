import type { Exchange, ExchangeStatus } from './exchange';
import type { LoadCounters } from './load-counters';
import type { NodeInfo } from './report-builder';
import type { ClusterKey } from './cluster-key';
import { PeriodicTimer } from '../timers';
import { budgetWindowMs, ReportFilter, tickMs, type ReportBatch } from './report-filter';
import { ReportLoop } from './report-loop';
import { ConfigWatcher, type ConfigDropReason, type ConfigMessage } from './runtime-config';

/** Reports sent further ahead of the receiver's clock than this are dropped, ms. */
export const MAX_CLOCK_SKEW_MS = 30_000;
/** Reports older than this are dropped, and off-line peers forgotten after it, ms. */
export const FORGET_AFTER_MS = 60_000;

/** What the control plane hands back to its broker. */
export interface ControlPlaneHandlers {
  /** Once per tick at most: the latest report of each peer heard, and what was dropped (reporter thread: report-filter.ts). */
  onReports(batch: ReportBatch): void;
  /** Node ids the broker knows now: a reporter (re)started later treats them as known, not as newcomers. */
  knownPeers?(): string[];
  /** The reporter thread died, was restarted, or was replaced by the main thread (`detail` says which); `fatal` when nothing reports any more. */
  onReporter?(detail: string, fatal: boolean): void;
  /** A runtime config change arrived (or the current one, at start). */
  onConfig(message: ConfigMessage): void;
  /** The connection to the control plane changed state. */
  onStatus(status: ExchangeStatus, detail: string): void;
  /** A config message was refused before it reached the broker (`drop` says why), or the store is unavailable. */
  onConfigError(reason: string, drop?: ConfigDropReason): void;
  /** The server refused an operation (e.g. a permissions violation). */
  onError?(detail: string): void;
}

/**
 * Publishes this node's reports every period (jittered, from the shared counters) and
 * delivers the peers' reports and config changes. Two kinds: on a worker thread with
 * its own NATS connection (production), or on the main thread (the in-process bus).
 */
export interface ControlPlane {
  start(info: NodeInfo, handlers: ControlPlaneHandlers): Promise<void>;
  /** Static information changed (endpoints, services, period). */
  update(info: NodeInfo): void;
  /** Publishes a report at once (load crossed the threshold, status changed). */
  reportNow(): void;
  /** Publishes a last report (the counters say LEAVING), flushes and disconnects. */
  stop(): Promise<void>;
  /** Which server or bus, for logs. */
  describe(): string;
}

/**
 * Reports over any Exchange: the in-process bus or NATS on the main thread, and NATS on
 * the reporter thread (report-worker.ts).
 */
export class LocalControlPlane implements ControlPlane {
  private loop?: ReportLoop;
  private watcher?: ConfigWatcher;
  private tick?: PeriodicTimer;
  private periodMs = 0;
  private stopped = false;

  constructor(
    private readonly exchange: Exchange,
    private readonly counters: LoadCounters,
    /** Signs reports and checks config changes when set. */
    private readonly clusterKey?: ClusterKey,
    /** Keep the thread alive while reporting (the reporter thread); the main thread lets the process exit. */
    private readonly keepAlive = false,
  ) {}

  async start(info: NodeInfo, h: ControlPlaneHandlers): Promise<void> {
    // Made before connecting: changes of info (e.g. from the stored config, delivered
    // while the watcher starts) are kept for the first report.
    this.loop = new ReportLoop(this.exchange, this.counters, info, this.clusterKey, !this.keepAlive);
    this.periodMs = info.periodMs;
    const filter = new ReportFilter({
      cluster: info.cluster,
      selfId: info.nodeId,
      key: this.clusterKey,
      maxClockSkewMs: MAX_CLOCK_SKEW_MS,
      maxAgeMs: FORGET_AFTER_MS,
      windowMs: budgetWindowMs(info.periodMs),
      known: h.knownPeers?.(),
    });
    this.exchange.onStatus = (s, d) => h.onStatus(s, d);
    this.exchange.onError = (d) => h.onError?.(d);
    await this.exchange.start((nodeId, data) => filter.offer(nodeId, data, Date.now()));
    // stop() came while the connection was being made: it found nothing to close then.
    if (this.stopped) return this.exchange.close();
    // One hand-over per tick: the main thread's cost does not grow with the traffic. A tick
    // over half a period late means this thread could not read for that long (starved of
    // CPU, or the process was stopped): the batch says so, and the broker judges nobody
    // until what arrived meanwhile is read.
    const deliver = (lateMs: number) => {
      let batch = filter.take(Date.now(), budgetWindowMs(this.periodMs));
      if (lateMs > this.periodMs / 2) (batch ??= { reports: [], drops: {}, flooded: [] }).lateMs = Math.round(lateMs);
      if (batch) h.onReports(batch);
    };
    this.tick = new PeriodicTimer(() => tickMs(this.periodMs), deliver, !this.keepAlive);
    deliver(0);
    this.tick.start();
    const nc = this.exchange.connection?.();
    if (nc) {
      this.watcher = new ConfigWatcher(nc, info.cluster, h.onConfig, h.onConfigError, this.clusterKey);
      await this.watcher.start();
      if (this.stopped) return;
    }
    this.loop.start();
  }

  update(info: NodeInfo): void {
    this.periodMs = info.periodMs;
    this.loop?.update(info);
  }

  reportNow(): void {
    this.loop?.publish();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.tick?.stop();
    this.watcher?.stop();
    this.loop?.stop();
    await this.exchange.flush();
    await this.exchange.close().catch(() => {});
  }

  describe(): string {
    return this.exchange.describe();
  }
}
