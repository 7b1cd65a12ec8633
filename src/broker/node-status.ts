import type { ExchangeStatus, LoadCounters, NodeStatusName } from '../cluster';
import type { Logger } from '../log';
import type { SelfState } from '../policy';
import { PeriodicTimer } from '../timers';
import type { NodeHealth } from './node-health';

/** What the node's status needs of its broker. */
export interface NodeStatusDeps {
  /** Where the reports read the status (shared with the reporter thread). */
  counters: LoadCounters;
  /** This node as the decision sees it. */
  self: SelfState;
  health: NodeHealth;
  log: Logger;
  /** The reporting period now, ms: the self-check runs once a period. */
  periodMs(): number;
  /** Missed periods before a silent peer is off-line. */
  offlineAfterPeriods: number;
  /** The main loop's delay over the last period, ms. */
  loopDelayMs(): number;
  /** Why the node cannot take more work now ('' when it can): connections, calls, open files. */
  pressure(): string;
  /** Publishes a report at once. */
  reportNow(): void;
  /** Looks again at peers that went off-line while the control plane was down (identity takeover). */
  recheckPeers(): void;
}

/**
 * Where the node stands (ONLINE, UNHEALTHY, DRAINING, LEAVING): its self-check every
 * period, its control plane's connection, and the reclaiming of its address. Each change
 * goes to the reports, the decision, the health service and the log.
 */
export class NodeStatus {
  /** The node is getting its address back from the peer that adopted it: the self-check waits. */
  reclaiming = false;
  private connected = false;
  private readonly healthTimer: PeriodicTimer;
  private recheck?: NodeJS.Timeout;

  constructor(private readonly d: NodeStatusDeps) {
    this.healthTimer = new PeriodicTimer(d.periodMs, () => this.checkHealth());
  }

  /** ONLINE, UNHEALTHY, DRAINING or LEAVING, as the reports say. */
  get status(): NodeStatusName {
    return this.d.counters.status;
  }

  /** The control plane is connected now: a silent peer then proves something. */
  get controlConnected(): boolean {
    return this.connected;
  }

  /** Starts the self-check. */
  start(): void {
    this.healthTimer.start();
  }

  /** The period changed: the self-check follows it at once. */
  reschedule(): void {
    this.healthTimer.reschedule();
  }

  /** Stops the self-check and a pending look at peers. */
  stop(): void {
    this.healthTimer.stop();
    clearTimeout(this.recheck);
    this.recheck = undefined;
  }

  /** Sets the status (DRAINING and LEAVING are final: health checks do not undo them) and reports it at once. */
  set(s: NodeStatusName): void {
    const c = this.d.counters;
    const from = c.status;
    if (from === s) return;
    if ((from === 'DRAINING' || from === 'LEAVING') && (s === 'ONLINE' || s === 'UNHEALTHY')) return;
    c.status = s;
    this.d.self.status = s === 'LEAVING' ? 'DRAINING' : s;
    this.d.health.setServing(s === 'ONLINE');
    this.d.log.info({ from, to: s }, 'status changed');
    this.d.reportNow();
  }

  /**
   * The connection to the control plane changed state. With NATS gone the node keeps serving
   * locally; peers' reports go stale, so it stops redirecting to them by itself. Health says
   * so under its own name.
   */
  onExchangeStatus(s: ExchangeStatus, detail: string): void {
    const up = s === 'connected' || s === 'reconnected';
    if (up && !this.connected && s === 'reconnected') {
      // Peers that are alive report within a period or two; those still silent then are gone.
      clearTimeout(this.recheck);
      this.recheck = setTimeout(() => {
        this.recheck = undefined;
        this.d.recheckPeers();
      }, this.d.offlineAfterPeriods * this.d.periodMs());
      this.recheck.unref();
    }
    this.connected = up;
    this.d.health.setControlPlane(up);
    const log = this.d.log;
    if (up) log.info({ detail }, `control plane ${s}`);
    else if (s === 'closed') log.info({ detail }, 'control plane closed');
    else log.warn({ detail }, `control plane ${s}: serving locally, no redirects to peers with stale reports`);
  }

  private checkHealth(): void {
    this.d.health.check(this.d.loopDelayMs(), this.d.pressure(), (healthy, reason) => {
      if (this.reclaiming) return;
      if (!healthy && this.d.counters.status === 'ONLINE') this.d.log.warn({ reason }, 'self-check failed');
      this.set(healthy ? 'ONLINE' : 'UNHEALTHY');
    });
  }
}
