import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { PROTO_DIR } from '../proto-path';
import { isHostPort } from '../wire';
import { isWireFormat } from './wire-scan';

/** A load report, decoded and checked. Field meanings: proto/peerbroker/v1/cluster.proto. */
export interface LoadReport {
  cluster: string;
  nodeId: string;
  endpoint: string;
  incarnation: number;
  seq: number;
  sentAtMs: number;
  load: number;
  inFlight: number;
  capacity: number;
  status: ReportStatus;
  services: string[];
  endpoints: string[];
  periodMs: number;
  queued: number;
  loopDelayMs: number;
  callsRun: number;
  callsRedirected: number;
  /** Calls that may wait for a slot (0 when the sender did not say). */
  maxQueue: number;
  /** The node may adopt the endpoint of a peer that went off-line (false when absent). */
  takeover?: boolean;
  /** Base URL of the node's HTTP listener, or '' (absent: none). */
  httpUrl?: string;
  /** Calls the node redirected since its start, by target and reason. */
  redirects?: RedirectCount[];
}

/** Calls one node sent to `toNode` for `reason`, since its start. */
export interface RedirectCount {
  toNode: string;
  reason: string;
  count: number;
}

/** Most redirect counts one report may carry (targets × reasons). */
export const MAX_REPORT_REDIRECTS = 64;
const HTTP_URL = /^https?:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
const REASON = /^[a-z-]{1,32}$/;

export type ReportStatus = 'ONLINE' | 'DRAINING' | 'UNHEALTHY' | 'LEAVING';

/**
 * Why a message on a load subject was dropped; each is counted. `unsigned`: a cluster key
 * is set and the message is not a signed envelope; `bad-signature`: its signature,
 * algorithm or key id does not verify; `rate-limited`: its subject had used up what one
 * subject may cost per tick, so it was not read; `peer-limit`: a new node id while the
 * peer table is full.
 */
export const DROP_REASONS = [
  'malformed',
  'invalid',
  'wrong-cluster',
  'wrong-subject',
  'old-incarnation',
  'replay',
  'future',
  'expired',
  'own-id',
  'unsigned',
  'bad-signature',
  'rate-limited',
  'peer-limit',
] as const;

/** One of DROP_REASONS. */
export type DropReason = (typeof DROP_REASONS)[number];

/** A report that failed to decode or validate, with the reason and a short description. */
export interface Rejected {
  reason: DropReason;
  message: string;
}

/** Largest report accepted; a real one is a few hundred bytes. */
export const MAX_REPORT_BYTES = 64 * 1024;
/** Most endpoints one report may list (a node's own and the ones it adopted). */
export const MAX_REPORT_ENDPOINTS = 64;
/** Longest reporting period accepted, ms: a peer silent for `offline-after` of them is off-line, so this bounds how long a fake stays on-line. */
export const MAX_PERIOD_MS = 60_000;
/** Shortest reporting period accepted, ms. */
export const MIN_PERIOD_MS = 10;
const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SERVICE = /^[A-Za-z_][A-Za-z0-9_.]{0,255}$/;
const STATUSES: readonly ReportStatus[] = ['ONLINE', 'DRAINING', 'UNHEALTHY', 'LEAVING'];

let reportType: protobuf.Type | undefined;
function type(): protobuf.Type {
  reportType ??= protobuf
    .loadSync(path.join(PROTO_DIR, 'peerbroker', 'v1', 'cluster.proto'))
    .lookupType('peerbroker.v1.LoadReport');
  return reportType;
}

/** True when `id` can be a node id (it is used as a NATS subject token). */
export function isValidNodeId(id: string): boolean {
  return NODE_ID.test(id);
}

/** What a message that is not protobuf wire format is dropped as. */
export const NOT_WIRE_FORMAT: Rejected = Object.freeze({ reason: 'malformed', message: 'not protobuf wire format' });

/** Encodes a report to protobuf bytes. */
export function encodeReport(r: LoadReport): Uint8Array {
  const t = type();
  return t
    .encode(t.fromObject({
      cluster: r.cluster,
      nodeId: r.nodeId,
      endpoint: r.endpoint,
      incarnation: r.incarnation,
      seq: r.seq,
      sentAtMs: r.sentAtMs,
      load: r.load,
      inFlight: r.inFlight,
      capacity: r.capacity,
      status: r.status,
      services: r.services,
      endpoints: r.endpoints,
      periodMs: r.periodMs,
      queued: r.queued,
      loopDelayMs: r.loopDelayMs,
      callsRun: r.callsRun,
      callsRedirected: r.callsRedirected,
      maxQueue: r.maxQueue,
      takeover: r.takeover,
      httpUrl: r.httpUrl,
      redirects: r.redirects,
    }))
    .finish();
}

/**
 * Decodes and validates a report; never throws. `scanned`: the caller checked already
 * that `bytes` are protobuf wire format (`isWireFormat`), so they are not scanned twice.
 */
export function decodeReport(bytes: Uint8Array, scanned = false): LoadReport | Rejected {
  if (bytes.length === 0 || bytes.length > MAX_REPORT_BYTES) {
    return { reason: 'malformed', message: `size ${bytes.length} bytes` };
  }
  if (!scanned && !isWireFormat(bytes)) return NOT_WIRE_FORMAT;
  let o: Record<string, unknown>;
  try {
    const t = type();
    // A plain view: protobufjs's Buffer reader clamps a cut-off string instead of failing.
    const plain = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    o = t.toObject(t.decode(plain), { longs: Number, enums: String, defaults: true, arrays: true });
  } catch (err) {
    return { reason: 'malformed', message: (err as Error).message.slice(0, 120) };
  }
  return validate(o);
}

function validate(o: Record<string, unknown>): LoadReport | Rejected {
  const bad = (message: string): Rejected => ({ reason: 'invalid', message });
  const nodeId = o.nodeId as string;
  if (!isValidNodeId(nodeId)) return bad(`node id '${String(nodeId).slice(0, 64)}' is not valid`);
  if (typeof o.cluster !== 'string' || o.cluster.length === 0) return bad('cluster is empty');
  const endpoint = o.endpoint as string;
  if (!isHostPort(endpoint)) return bad(`endpoint '${String(endpoint).slice(0, 64)}' is not host:port`);
  const load = o.load as number;
  if (!Number.isFinite(load) || load < 0 || load > 1) return bad(`load ${load} is outside 0..1`);
  const capacity = o.capacity as number;
  if (!(capacity >= 1)) return bad('capacity is 0');
  const periodMs = o.periodMs as number;
  if (!(periodMs >= MIN_PERIOD_MS && periodMs <= MAX_PERIOD_MS)) return bad(`period ${periodMs} ms is outside ${MIN_PERIOD_MS}..${MAX_PERIOD_MS}`);
  const status = o.status as ReportStatus;
  if (!STATUSES.includes(status)) return bad(`status '${String(status)}' is unknown`);
  const services = o.services as string[];
  if (services.length > 1000 || !services.every((s) => SERVICE.test(s))) return bad('services are not valid');
  const endpoints = o.endpoints as string[];
  if (endpoints.length > MAX_REPORT_ENDPOINTS) return bad('too many endpoints');
  for (const e of endpoints) {
    if (!isHostPort(e)) return bad(`endpoint '${String(e).slice(0, 64)}' is not host:port`);
  }
  for (const k of ['incarnation', 'seq', 'sentAtMs', 'inFlight', 'queued', 'callsRun', 'callsRedirected', 'maxQueue'] as const) {
    if (!Number.isSafeInteger(o[k]) || (o[k] as number) < 0) return bad(`${k} is not a count`);
  }
  const loopDelayMs = o.loopDelayMs as number;
  if (!Number.isFinite(loopDelayMs) || loopDelayMs < 0) return bad('loop delay is not a duration');
  const httpUrl = o.httpUrl as string;
  if (httpUrl !== '' && !HTTP_URL.test(httpUrl)) return bad(`http url '${String(httpUrl).slice(0, 64)}' is not http(s)://host:port`);
  const redirects = o.redirects as RedirectCount[];
  if (redirects.length > MAX_REPORT_REDIRECTS) return bad('too many redirect counts');
  for (const c of redirects) {
    if (!NODE_ID.test(c.toNode) || !REASON.test(c.reason) || !Number.isSafeInteger(c.count) || c.count < 0) return bad('redirect counts are not valid');
  }
  return {
    cluster: o.cluster,
    nodeId,
    endpoint,
    incarnation: o.incarnation as number,
    seq: o.seq as number,
    sentAtMs: o.sentAtMs as number,
    load,
    inFlight: o.inFlight as number,
    capacity,
    status,
    services,
    endpoints,
    periodMs,
    queued: o.queued as number,
    loopDelayMs,
    callsRun: o.callsRun as number,
    callsRedirected: o.callsRedirected as number,
    maxQueue: o.maxQueue as number,
    takeover: o.takeover === true,
    // Left out when empty, as a report from a node without HTTP (or an older one) says nothing of them.
    ...(httpUrl !== '' ? { httpUrl } : {}),
    ...(redirects.length > 0 ? { redirects: redirects.map((c) => ({ toNode: c.toNode, reason: c.reason, count: c.count })) } : {}),
  };
}

/** True when `r` is a rejection, not a report. */
export function isRejected(r: LoadReport | Rejected): r is Rejected {
  return (r as Rejected).reason !== undefined;
}

/** What a report must match to be read, whoever reads it (the reporter thread and the peer view). */
export interface ReportExpectations {
  cluster: string;
  /** This node's id: a report carrying it is dropped. */
  selfId: string;
  /** Reports sent further ahead of our clock than this are dropped, ms. */
  maxClockSkewMs: number;
  /** Reports older than this are dropped, ms. */
  maxAgeMs: number;
}

/**
 * The checks that need no memory of earlier reports: cluster, node id against the
 * subject's token, own id, clock skew, age. Returns why `r` is dropped, if it is.
 */
export function checkReportFields(r: LoadReport, subjectNode: string, e: ReportExpectations, wallNow: number): DropReason | undefined {
  if (r.cluster !== e.cluster) return 'wrong-cluster';
  if (r.nodeId !== subjectNode) return 'wrong-subject';
  if (r.nodeId === e.selfId) return 'own-id';
  if (r.sentAtMs > wallNow + e.maxClockSkewMs) return 'future';
  if (r.sentAtMs < wallNow - e.maxAgeMs) return 'expired';
  return undefined;
}
