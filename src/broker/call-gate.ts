import { Metadata, status, type MethodDefinition, type sendUnaryData, type ServerErrorResponse, type UntypedHandleCall } from '@grpc/grpc-js';
import type { PeerRecord, PeerView } from '../cluster';
import { decide, redirectDetail, type CallInfo, type Decision, type PeerChoice, type PolicyConfig, type SelfState } from '../policy';
import { HOPS_FORWARDED, MD_ADVICE, MD_ADVISE_ME, MD_FOLLOW, MD_HOPS, MD_LOCATION, MD_LOCATION_NODE, MD_NODE, MD_REASON, MD_SESSION, parseFollow, parseHops } from '../wire';
import type { Context } from '@opentelemetry/api';
import { tracingOn } from '../tracing';
import type { AdviceCache } from './advice-cache';
import type { Admission } from './admission';
import { CallCounters, type MethodCounts } from './call-counters';
import { startCallSpan, traceDecision } from './call-tracing';
import type { Forwarder } from './forwarder';
import { ADVISE, AT_ANSWER, CLOSES, DEFAULT_CANCEL_GRACE_MS, FOLLOWS, IN_SESSION, LocalCall, OPENS, type Call, type CallTarget, type GateStats, type Handler, type LocalCallHost } from './local-call';
import { NOT_PRINTABLE } from './session-header-guard';
import { MAX_TOKEN_LENGTH, tokenOwner, type SessionTable } from './session-table';

export type { GateStats } from './local-call';

/** What the gate needs of its broker. */
export interface GateDeps {
  nodeId: string;
  self: SelfState;
  admission: Admission;
  peers: PeerView;
  config: PolicyConfig;
  choice: PeerChoice;
  sessions: SessionTable;
  forwarder: Forwarder;
  /** Where clients should spread their calls, per service. */
  advice: AdviceCache;
  /** The reporting period now, ms. */
  periodMs: () => number;
  /** How long the handler of a cancelled call keeps its slot at most, ms. Default 30 000. */
  cancelGraceMs?: number;
  /**
   * Server interceptors run on this node's server (`serverOptions.interceptors`): each call
   * then sends a copy of the shared response headers. Default false.
   */
  interceptors?: boolean;
  /** A redirect or forward was decided (for a debug log line; the gate counts it itself). */
  onRedirect?: (d: Extract<Decision, { kind: 'redirect' }>) => void;
  /** A call was refused at local time `now` because this node (or a session's owner, or the session table) is full. */
  onOverload?: (d: Extract<Decision, { kind: 'reject' }>, now: number) => void;
  /** A cancelled call's handler still ran `cancelGraceMs` after the cancel; its slot was taken back. */
  onOverrun?: (path: string) => void;
}

type Reject = Extract<Decision, { kind: 'reject' }>;
/** Refusals that mean "full": logged (rate-limited) at warn. */
const OVERLOAD = new Set<Reject['reason']>(['overloaded', 'session-overloaded', 'max-sessions']);

type Redirect = Extract<Decision, { kind: 'redirect' }>;

/** A method the gate wraps, and what is looked up once for it. */
class GatedMethod implements CallTarget {
  constructor(
    readonly path: string,
    readonly service: string,
    readonly counts: MethodCounts,
  ) {}
}

/** The answer to a call whose session token is malformed. */
const MALFORMED_TOKEN: Decision = Object.freeze({
  kind: 'reject',
  code: status.INVALID_ARGUMENT,
  reason: 'malformed-token',
  message: `peerbroker: malformed '${MD_SESSION}' token (expected <nodeId>.<random>, at most ${MAX_TOKEN_LENGTH} characters)`,
});

/** The answer to a call whose session token is not printable ASCII (see session-header-guard.ts). */
const NOT_PRINTABLE_TOKEN: Decision = Object.freeze({
  kind: 'reject',
  code: status.INVALID_ARGUMENT,
  reason: 'malformed-token',
  message: `peerbroker: malformed '${MD_SESSION}' token: it holds characters outside printable ASCII`,
});

/**
 * Applies the decision to every call before the handler runs, keeps the in-flight
 * count, starts and ends sessions. Handlers are wrapped once, at addService.
 */
export class CallGate implements LocalCallHost {
  readonly stats: GateStats = { run: 0, redirected: 0, forwarded: 0, rejected: 0 };
  /** What the gate did, per method and target, for the metrics. */
  readonly counters = new CallCounters();
  readonly acceptedHeaders = new Metadata();
  readonly shareHeaders: boolean;
  readonly admission: Admission;
  readonly sessions: SessionTable;
  private readonly call: CallInfo = { path: '', service: '', hops: 0, follows: false, advised: false, session: '', sessionOwner: '', forwarded: false };
  choice: PeerChoice;
  /** Mean time a local call holds its slot, ms (moving average); redirect accounting fades with it. */
  meanCallMs = 0;
  /** The time of the decision in progress (local monotonic ms): one clock reading per call. */
  private now = 0;

  constructor(private readonly d: GateDeps) {
    this.acceptedHeaders.set(MD_NODE, d.nodeId);
    this.shareHeaders = d.interceptors !== true;
    this.choice = d.choice;
    this.admission = d.admission;
    this.sessions = d.sessions;
  }

  /** Wraps a user handler of `method` so the decision runs first. */
  wrap(method: MethodDefinition<unknown, unknown>, service: string, handler: UntypedHandleCall): UntypedHandleCall {
    const h = handler as Handler;
    const path = method.path;
    const counts = this.counters.method(service, path.slice(service.length + 2));
    const gated = new GatedMethod(path, service, counts);
    // Unary and client-streaming calls end with a callback; the others end their stream.
    const withCallback = !method.responseStream;
    const atAnswer = withCallback && !method.requestStream ? AT_ANSWER : 0;
    return ((call: Call, callback?: sendUnaryData<unknown>) => {
      const d = this.decideFor(path, service, call.metadata);
      const traced = tracingOn() ? startCallSpan(this.d.nodeId, path, service, call.metadata, this.call.hops, this.d.self.load) : undefined;
      if (d.kind !== 'local') {
        if (d.kind === 'redirect' && (!this.call.follows || cannotFollowTo(call, d.peer))) {
          this.stats.forwarded++;
          this.countRedirect(d, counts, 'forward');
          if (traced !== undefined) traceDecision(traced, d, true);
          this.d.forwarder.forward(method, call as never, d.peer.endpoint, callback, traced);
          return;
        }
        refuse(call, callback, this.notLocal(d, counts, traced));
        return;
      }
      if (traced !== undefined) traceDecision(traced, d, false);
      this.runLocal(gated, call, withCallback ? callback! : undefined, h, atAnswer, traced);
    }) as UntypedHandleCall;
  }

  /** The decision for a call to `path` with `md`, at this moment. */
  private decideFor(path: string, service: string, md: Metadata): Decision {
    const call = this.call;
    call.path = path;
    call.service = service;
    // Absent or malformed: a plain client, which cannot follow.
    const follow = parseFollow(md.get(MD_FOLLOW)[0]);
    call.follows = follow === 1 || follow === 2;
    call.advised = follow === 2;
    call.forwarded = false;
    if (call.follows) {
      const hops = md.get(MD_HOPS)[0];
      // A call a peer relayed runs here or fails: it is never moved again, whatever the hop limits.
      call.forwarded = hops === HOPS_FORWARDED;
      call.hops = parseHops(hops, this.d.config.maxHops);
    } else call.hops = 0;
    const token = md.get(MD_SESSION)[0];
    if (token === undefined || token === '') {
      call.session = '';
      call.sessionOwner = '';
    } else {
      const owner = typeof token === 'string' ? tokenOwner(token) : null;
      if (owner === null) return token === NOT_PRINTABLE ? NOT_PRINTABLE_TOKEN : MALFORMED_TOKEN;
      call.session = token as string;
      call.sessionOwner = owner;
    }
    const a = this.d.admission;
    const self = this.d.self;
    self.load = a.occupancy();
    self.running = a.running;
    self.queued = a.queued;
    const now = performance.now();
    this.now = now;
    this.d.peers.fadeExtras(now, this.tauMs());
    return decide(call, self, this.d.peers.peers, this.d.config, this.choice, now);
  }

  private runLocal(
    m: GatedMethod,
    call: Call,
    callback: sendUnaryData<unknown> | undefined,
    handler: Handler,
    atAnswer: number,
    traced: Context | undefined,
  ): void {
    const c = this.call;
    // CompiledRules keeps each method's role, and skips the look-up when no rule names sessions.
    const rules = this.d.config.rules;
    const role = rules !== undefined && rules.hasSessions ? rules.sessionRole(m.path) : null;
    let mode = (c.follows ? FOLLOWS : 0) | atAnswer;
    // A stub that spreads its calls by advice (follow 2) asks now and then for the current one.
    if (c.advised && call.metadata.get(MD_ADVISE_ME)[0] === '1') mode |= ADVISE;
    let idleMs = 0;
    if (role !== null) {
      if (role.enter) {
        // The place is taken before the handler runs: past the cap nothing runs, nothing is lost.
        if (!this.sessions.reserve()) return refuse(call, callback, this.notLocal(this.sessionsFull(), m.counts, traced));
        mode |= OPENS;
        idleMs = role.idleMs;
      } else if (c.session !== '' && c.sessionOwner === this.d.nodeId) mode |= role.exit ? CLOSES | IN_SESSION : IN_SESSION;
    }
    const run = new LocalCall(this, call, callback, handler, m, mode, c.session, idleMs, traced);
    if (this.admission.admit(run) === 'full') {
      run.refuse();
      refuse(call, callback, this.notLocal(this.queueFull(), m.counts, traced));
    } else m.counts.local++;
  }

  /** @internal */
  advice(service: string): string {
    return this.d.advice.get(service, performance.now());
  }

  cancelGraceMs(): number {
    return this.d.cancelGraceMs ?? DEFAULT_CANCEL_GRACE_MS;
  }

  /** @internal */
  ended(ms: number, overran: boolean, path: string): void {
    this.meanCallMs = this.meanCallMs === 0 ? ms : this.meanCallMs * 0.95 + ms * 0.05;
    if (overran) this.d.onOverrun?.(path);
  }

  private queueFull(): Reject {
    const a = this.admission;
    return {
      kind: 'reject',
      code: status.RESOURCE_EXHAUSTED,
      reason: 'overloaded',
      message: `peerbroker: node '${this.d.nodeId}' is at capacity (${a.running} running, ${a.queued} queued, the most it queues); the call did not run`,
    };
  }

  private sessionsFull(): Reject {
    return {
      kind: 'reject',
      code: status.RESOURCE_EXHAUSTED,
      reason: 'max-sessions',
      message:
        `peerbroker: node '${this.d.nodeId}' holds its limit of ${this.sessions.maxSessions} live sessions (maxSessions); ` +
        'no session was started and the call did not run',
    };
  }

  // Until calls were timed, a redirect counts for one reporting period.
  private tauMs(): number {
    return this.meanCallMs > 0 ? this.meanCallMs : this.d.periodMs();
  }

  // A forward counts as a redirect too in `stats` (what reports and Status say), as it always has.
  private countRedirect(d: Redirect, counts: MethodCounts, kind: 'redirect' | 'forward'): void {
    this.stats.redirected++;
    counts.count(kind, d.reason);
    this.counters.sentTo(kind, d.peer.nodeId, d.reason);
    this.d.peers.account(d.peer, this.now, this.tauMs());
    this.d.onRedirect?.(d);
  }

  // The status a redirect or reject is sent as; counts it, and ends the call's span.
  private notLocal(d: Redirect | Reject, counts: MethodCounts, traced: Context | undefined): ServerErrorResponse {
    if (traced !== undefined) traceDecision(traced, d, false);
    if (d.kind === 'redirect') {
      this.countRedirect(d, counts, 'redirect');
      const c = this.call;
      const trailers = new Metadata();
      trailers.set(MD_LOCATION, d.peer.endpoint);
      trailers.set(MD_LOCATION_NODE, d.peer.nodeId);
      trailers.set(MD_REASON, d.reason);
      // A redirect says also where the client's next calls should go (MOVED, beside this
      // call's ASK): clients that spread their calls by it stop paying redirects.
      const advice = this.d.advice.get(c.service, this.now);
      if (advice) trailers.set(MD_ADVICE, advice);
      const detail = redirectDetail(d, c.path, c.service, this.d.nodeId, this.d.config.threshold);
      return {
        name: 'Redirect',
        message: '',
        code: status.RESOURCE_EXHAUSTED,
        details: `peerbroker: redirected to ${d.peer.nodeId} (${d.peer.endpoint}): ${detail}`,
        metadata: trailers,
      };
    }
    this.stats.rejected++;
    counts.count('reject', d.reason);
    if (OVERLOAD.has(d.reason)) this.d.onOverload?.(d, this.now);
    return { name: 'Rejected', message: d.message, code: d.code, details: d.message };
  }
}

/** Answers a call that will not run here with `err`. */
function refuse(call: Call, callback: sendUnaryData<unknown> | undefined, err: ServerErrorResponse): void {
  if (callback !== undefined) callback(err, null);
  else call.emit('error', err);
}

/**
 * Whether `call` cannot take a redirect to `peer`: an HTTP call (src/http marks it
 * `redirectsByHttpUrl`) is redirected to the peer's HTTP URL, so to a peer without an HTTP
 * listener the gate relays it instead, as it relays a plain client's.
 */
function cannotFollowTo(call: Call, peer: Redirect['peer']): boolean {
  return (call as { redirectsByHttpUrl?: boolean }).redirectsByHttpUrl === true && !(peer as PeerRecord).httpUrl;
}
