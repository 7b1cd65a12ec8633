/** What the gate did with a call, as the metrics name it. */
export type CallDecision = 'local' | 'redirect' | 'forward' | 'reject';

/**
 * What the gate did with the calls of one method, since start: plain numbers, made once at
 * addService and read by the metrics at scrape time, so the gate never calls prom-client.
 * A call let in to run here costs one increment; the others (redirected, forwarded,
 * refused: off the local path) a map update by reason.
 */
export class MethodCounts {
  /** Calls let in to run here (started at once or queued). */
  local = 0;
  /** Calls answered with a redirect, by reason (`load`, `session`, ...). */
  readonly redirect = new Map<string, number>();
  /** Calls relayed to a peer for a plain client, by reason. */
  readonly forward = new Map<string, number>();
  /** Calls refused, by reason (`overloaded`, `max-sessions`, ...). */
  readonly reject = new Map<string, number>();

  constructor(
    readonly service: string,
    readonly method: string,
  ) {}

  /** Counts a call that did not run here. */
  count(decision: Exclude<CallDecision, 'local'>, reason: string): void {
    const m = this[decision];
    m.set(reason, (m.get(reason) ?? 0) + 1);
  }
}

/** Most target nodes counted one by one; calls to others count under `other` (ids come and go over a long life). */
export const MAX_TARGETS = 2_048;

/** The counts of every method wrapped by a gate, and where it sent calls. */
export class CallCounters {
  readonly methods: MethodCounts[] = [];
  /** Redirect answers sent, by target node. */
  readonly redirectsTo = new Map<string, number>();
  /** Calls forwarded, by target node. */
  readonly forwardsTo = new Map<string, number>();

  /** The counts of a method, made once when its handler is wrapped. */
  method(service: string, method: string): MethodCounts {
    const m = new MethodCounts(service, method);
    this.methods.push(m);
    return m;
  }

  /** Counts a call sent to `nodeId` (a redirect, or a forward). */
  sentTo(kind: 'redirect' | 'forward', nodeId: string): void {
    const m = kind === 'redirect' ? this.redirectsTo : this.forwardsTo;
    const key = m.has(nodeId) || m.size < MAX_TARGETS ? nodeId : 'other';
    m.set(key, (m.get(key) ?? 0) + 1);
  }
}
