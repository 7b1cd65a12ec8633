import { isRejected, loadSubject, openReport, type ClusterKey, type PeerView } from '../cluster';
import type { Logger, RateLimitedLog } from '../log';

/**
 * Where peers' load reports enter: verified (with a cluster key, only reports whose
 * signature verifies are decoded), applied to the peer view, or dropped, counted by
 * reason and logged rate-limited naming the subject.
 */
export class ReportIntake {
  constructor(
    private readonly cluster: string,
    private readonly peers: PeerView,
    private readonly clusterKey: ClusterKey | undefined,
    private readonly log: Logger,
    private readonly dropLog: RateLimitedLog,
  ) {}

  /** A message that arrived on `nodeId`'s load subject. */
  receive(nodeId: string, data: Uint8Array): void {
    const r = openReport(data, this.clusterKey);
    if (isRejected(r)) {
      this.peers.drop(r.reason, nodeId);
      this.dropLog.maybe(r.reason, performance.now(), (suppressed) =>
        this.log.warn({ subject: this.subject(nodeId), reason: r.reason, detail: r.message, suppressed }, 'load report dropped'),
      );
      return;
    }
    const reason = this.peers.apply(r, nodeId, performance.now(), Date.now());
    if (reason) {
      this.dropLog.maybe(reason, performance.now(), (suppressed) =>
        this.log.warn({ subject: this.subject(nodeId), reason, suppressed }, 'load report dropped'),
      );
    }
  }

  // The subject a report came on, for logs; a hostile token is cut short.
  private subject(token: string): string {
    return loadSubject(this.cluster, token.length > 64 ? `${token.slice(0, 64)}...` : token);
  }
}
