import type { LoadCounters } from './load-counters';
import type { LoadReport, RedirectCount } from './report-codec';

/** What a node says of itself that changes rarely (posted to the reporter on change). */
export interface NodeInfo {
  cluster: string;
  nodeId: string;
  endpoint: string;
  endpoints: string[];
  services: string[];
  capacity: number;
  /** Calls that may wait for a slot. */
  maxQueue: number;
  periodMs: number;
  incarnation: number;
  /** May adopt the endpoints of peers that go off-line. */
  takeover: boolean;
  /** Base URL of the node's HTTP listener, if it has one. */
  httpUrl?: string;
  /** Calls redirected since start, by target and reason (posted again when they change). */
  redirects?: RedirectCount[];
}

/** How often the main loop stamps its heartbeat, ms. */
export const HEARTBEAT_MS = 20;

/**
 * The main loop's delay as seen from another thread: how late its heartbeat is,
 * or the delay it measured itself, whichever is higher.
 */
export function loopDelay(c: LoadCounters, wallNow: number): number {
  const late = c.heartbeat > 0 ? Math.max(0, wallNow - c.heartbeat - HEARTBEAT_MS) : 0;
  return Math.max(late, c.loopDelayMs);
}

/**
 * Load from the main loop's delay: none up to a fifth of a period (ordinary jitter),
 * rising to full load when the loop is a whole period late: its calls wait, so peers
 * must not send it more.
 */
export function delayLoad(delayMs: number, periodMs: number): number {
  const floor = 0.2 * periodMs;
  if (delayMs <= floor) return 0;
  return Math.min(1, (delayMs - floor) / (periodMs - floor));
}

/** A report from the shared counters (each read once: the main thread changes them meanwhile). */
export function buildReport(info: NodeInfo, c: LoadCounters, seq: number, wallNow: number): LoadReport {
  const delay = loopDelay(c, wallNow);
  const running = c.running;
  const queued = c.queued;
  const blocked = delayLoad(delay, info.periodMs);
  const load = Math.min(1, Math.max((running + queued) / info.capacity, c.meterLoad, blocked));
  return {
    cluster: info.cluster,
    nodeId: info.nodeId,
    endpoint: info.endpoint,
    incarnation: info.incarnation,
    seq,
    sentAtMs: wallNow,
    load,
    inFlight: running,
    capacity: info.capacity,
    status: c.status,
    services: info.services,
    endpoints: info.endpoints,
    periodMs: info.periodMs,
    queued,
    loopDelayMs: delay,
    callsRun: c.callsRun,
    callsRedirected: c.callsRedirected,
    maxQueue: info.maxQueue,
    takeover: info.takeover,
    httpUrl: info.httpUrl ?? '',
    redirects: info.redirects ?? [],
  };
}
