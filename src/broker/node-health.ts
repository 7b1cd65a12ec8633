import type * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';

/** Name under which the health service reports the control plane (NATS) connection. */
export const CONTROL_PLANE_HEALTH = 'peerbroker.ControlPlane';

/** A user probe: resolves true when the node can serve. Rejecting or false means unhealthy. */
export type HealthProbe = () => boolean | Promise<boolean>;

/** Default main-loop delay (p99 over a period) above which a node calls itself unhealthy, ms. */
export const DEFAULT_MAX_LOOP_DELAY_MS = 1_000;

/**
 * Self-diagnostics, run every period: main-loop delay, resources near their limits
 * (connections, open calls, open files: resource-pressure.ts) and an optional user probe.
 * The verdict goes into the reports (UNHEALTHY) and into the standard
 * `grpc.health.v1.Health` service, so ordinary health probes see it too.
 */
export class NodeHealth {
  private readonly impl = new HealthImplementation({ '': 'SERVING' });
  private services: string[] = [];
  private probing = false;

  constructor(
    private readonly maxLoopDelayMs: number,
    private readonly probe: HealthProbe | undefined,
    private readonly probeTimeoutMs: () => number,
  ) {}

  /** Serves `grpc.health.v1.Health` on `server`. */
  addToServer(server: grpc.Server, services: string[]): void {
    this.services = services;
    this.impl.addToServer(server);
    this.impl.setStatus(CONTROL_PLANE_HEALTH, 'NOT_SERVING');
    for (const s of services) this.impl.setStatus(s, 'SERVING');
  }

  /** Sets the serving status of the node and of every hosted service. */
  setServing(serving: boolean): void {
    const st: ServingStatus = serving ? 'SERVING' : 'NOT_SERVING';
    this.impl.setStatus('', st);
    for (const s of this.services) this.impl.setStatus(s, st);
  }

  /** The control plane is connected or not (the node keeps serving either way). */
  setControlPlane(connected: boolean): void {
    this.impl.setStatus(CONTROL_PLANE_HEALTH, connected ? 'SERVING' : 'NOT_SERVING');
  }

  /**
   * Runs the checks; `pressure` says why the node cannot take work ('' when it can).
   * `onVerdict` is called with the result (the probe may answer later).
   */
  check(loopDelayMs: number, pressure: string, onVerdict: (healthy: boolean, reason: string) => void): void {
    if (loopDelayMs > this.maxLoopDelayMs) {
      return onVerdict(false, `main loop delay ${Math.round(loopDelayMs)} ms > ${this.maxLoopDelayMs} ms`);
    }
    if (pressure !== '') return onVerdict(false, pressure);
    if (!this.probe) return onVerdict(true, '');
    if (this.probing) return; // the previous probe is still out: wait for it
    this.probing = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`probe did not answer within ${this.probeTimeoutMs()} ms`)), this.probeTimeoutMs());
      timer.unref();
    });
    Promise.race([Promise.resolve().then(this.probe), timeout])
      .then(
        (ok) => onVerdict(ok === true, ok === true ? '' : 'probe said unhealthy'),
        (err: Error) => onVerdict(false, `probe failed: ${err.message}`),
      )
      .finally(() => {
        clearTimeout(timer);
        this.probing = false;
      });
  }
}
