import { randomInt } from 'node:crypto';
import type { Exchange, ExchangeStatus } from './exchange';
import type { LoadCounters } from './load-counters';
import { NatsExchange } from './nats-exchange';
import { buildReport, type NodeInfo } from './report-builder';
import type { ClusterKey } from './cluster-key';
import { encodeReport } from './report-codec';
import { sealReport } from './report-signing';
import { ConfigWatcher, type ConfigDropReason, type ConfigMessage } from './runtime-config';

/** What the control plane hands back to its broker. */
export interface ControlPlaneHandlers {
  /** A message arrived on `peerbroker.<cluster>.load.<nodeId>`. */
  onReport(nodeId: string, data: Uint8Array): void;
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

/** The period with ±10 % jitter, so nodes started together do not report in lockstep. */
export function jittered(periodMs: number): number {
  return periodMs * 0.9 + randomInt(Math.max(1, Math.round(periodMs * 0.2)));
}

/** Reports from the main thread over any Exchange: the in-process bus, or NATS in tests. */
export class LocalControlPlane implements ControlPlane {
  private info?: NodeInfo;
  private seq = 0;
  private timer?: NodeJS.Timeout;
  private watcher?: ConfigWatcher;

  constructor(
    private readonly exchange: Exchange,
    private readonly counters: LoadCounters,
    /** Signs reports and checks config changes when set. */
    private readonly clusterKey?: ClusterKey,
  ) {}

  async start(info: NodeInfo, h: ControlPlaneHandlers): Promise<void> {
    this.info = info;
    this.exchange.onStatus = (s, d) => h.onStatus(s, d);
    if (this.exchange instanceof NatsExchange) this.exchange.onError = (d) => h.onError?.(d);
    await this.exchange.start((nodeId, data) => {
      if (nodeId !== info.nodeId || this.exchange instanceof NatsExchange) h.onReport(nodeId, data);
    });
    if (!(this.exchange instanceof NatsExchange)) h.onStatus('connected', this.exchange.describe());
    const nc = this.exchange instanceof NatsExchange ? this.exchange.connection() : undefined;
    if (nc) {
      this.watcher = new ConfigWatcher(nc, info.cluster, h.onConfig, h.onConfigError, this.clusterKey);
      await this.watcher.start();
    }
    this.publish();
    this.schedule();
  }

  update(info: NodeInfo): void {
    const periodChanged = this.info?.periodMs !== info.periodMs;
    this.info = info;
    if (periodChanged && this.timer) {
      clearTimeout(this.timer);
      // Peers judge silence by the period of the last report: tell them the new one at once.
      this.publish();
      this.schedule();
    }
  }

  reportNow(): void {
    this.publish();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.watcher?.stop();
    this.publish();
    await this.exchange.flush();
    await this.exchange.close().catch(() => {});
  }

  describe(): string {
    return this.exchange.describe();
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.publish();
      this.schedule();
    }, jittered(this.info!.periodMs));
    this.timer.unref();
  }

  private publish(): void {
    if (!this.info) return;
    const report = buildReport(this.info, this.counters, ++this.seq, Date.now());
    const bytes = encodeReport(report);
    this.exchange.publish(this.info.nodeId, this.clusterKey ? sealReport(bytes, this.clusterKey) : bytes);
  }
}
