import { randomInt } from 'node:crypto';
import type { ClusterKey } from './cluster-key';
import type { Exchange } from './exchange';
import type { LoadCounters } from './load-counters';
import { buildReport, type NodeInfo } from './report-builder';
import { encodeReport } from './report-codec';
import { sealReport } from './report-signing';

/** The period with ±10 % jitter, so nodes started together do not report in lockstep. */
export function jittered(periodMs: number): number {
  return periodMs * 0.9 + randomInt(Math.max(1, Math.round(periodMs * 0.2)));
}

/**
 * Publishes this node's report every (jittered) period from the shared counters, signed
 * when a cluster key is set. Used on the reporter thread and on the main thread alike.
 */
export class ReportLoop {
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly exchange: Exchange,
    private readonly counters: LoadCounters,
    private info: NodeInfo,
    private readonly key: ClusterKey | undefined,
    /** Let the process exit while the loop runs (main thread); the reporter thread keeps it. */
    private readonly unref: boolean,
  ) {}

  /** Publishes now and then every period. */
  start(): void {
    this.publish();
    this.schedule();
  }

  /** New static information; a changed period is reported at once. */
  update(info: NodeInfo): void {
    const periodChanged = info.periodMs !== this.info.periodMs;
    this.info = info;
    if (periodChanged && this.timer) {
      clearTimeout(this.timer);
      // Peers judge silence by the period of the last report: tell them the new one at once,
      // or a longer period makes this node look off-line until its next report.
      this.publish();
      this.schedule();
    }
  }

  /** Publishes one report now. */
  publish(): void {
    const report = buildReport(this.info, this.counters, this.counters.nextSeq(), Date.now());
    // What peers now believe: the main thread reports again at once when it moves a step from this.
    this.counters.reportedOccupancy = report.inFlight + report.queued;
    const bytes = encodeReport(report);
    this.exchange.publish(this.info.nodeId, this.key ? sealReport(bytes, this.key) : bytes);
  }

  /** Stops the timer and publishes a last report (the counters say LEAVING by then). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.publish();
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.publish();
      this.schedule();
    }, jittered(this.info.periodMs));
    if (this.unref) this.timer.unref();
  }
}
