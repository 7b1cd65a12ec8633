import { loadSubject, readClock, type DropReason, type PeerView, type ReportBatch } from '../cluster';
import type { Logger, RateLimitedLog } from '../log';

/**
 * Where peers' load reports enter the main thread: one batch per reporter tick, already
 * verified, decoded and checked on the reporter thread (cluster/report-filter.ts).
 * Applied to the peer view, or dropped; every drop is counted by reason and logged
 * at most every 10 s per reason, naming a subject.
 */
export class ReportIntake {
  constructor(
    private readonly cluster: string,
    private readonly peers: PeerView,
    private readonly log: Logger,
    private readonly dropLog: RateLimitedLog,
  ) {}

  /** A batch from the reporter. */
  receive(batch: ReportBatch): void {
    const now = performance.now();
    for (const [reason, t] of Object.entries(batch.drops) as Array<[DropReason, NonNullable<ReportBatch['drops'][DropReason]>]>) {
      this.peers.drop(reason, t.node, t.count);
      this.logDrop(reason, t.node, now, t.count, t.detail);
    }
    for (const id of batch.flooded) this.peers.flooded(id, now);
    const readNow = readClock();
    for (let i = 0; i < batch.reports.length; i++) {
      const r = batch.reports[i];
      // Read on the reporter thread about a tick ago; never taken as older than a period.
      const age = batch.readAt === undefined ? 0 : Math.min(Math.max(0, readNow - batch.readAt[i]), r.periodMs);
      const reason = this.peers.apply(r, now, now - age);
      if (reason) this.logDrop(reason, r.nodeId, now, 1);
    }
  }

  private logDrop(reason: DropReason, node: string, now: number, count: number, detail?: string): void {
    this.dropLog.maybe(reason, now, (suppressed) =>
      this.log.warn({ subject: loadSubject(this.cluster, node), reason, detail, count, suppressed }, 'load report dropped'),
    );
  }
}
