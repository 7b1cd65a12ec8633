import {
  Metadata,
  status,
  type MethodDefinition,
  type sendUnaryData,
  type ServerErrorResponse,
  type UntypedHandleCall,
} from '@grpc/grpc-js';
import type { PeerView } from '../cluster';
import { decide, LOCAL, type CallInfo, type Decision, type PeerChoice, type PolicyConfig, type SelfState } from '../policy';
import { MD_FOLLOW, MD_HOPS, MD_LOCATION, MD_LOCATION_NODE, MD_NODE, MD_REASON, MD_SESSION } from '../wire';
import type { Admission } from './admission';
import type { Forwarder } from './forwarder';
import { MAX_TOKEN_LENGTH, tokenOwner, type SessionTable } from './session-table';

/** Counters of what the gate did, since start. */
export interface GateStats {
  run: number;
  redirected: number;
  forwarded: number;
  rejected: number;
}

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
  /** The reporting period now, ms. */
  periodMs: () => number;
  onRedirect?: (d: Extract<Decision, { kind: 'redirect' }>) => void;
}

type Call = NodeJS.EventEmitter & { metadata: Metadata; sendMetadata(md: Metadata): void };
type Redirect = Extract<Decision, { kind: 'redirect' }>;

/** The answer to a call whose session token is malformed. */
const MALFORMED_TOKEN: Decision = Object.freeze({
  kind: 'reject',
  code: status.INVALID_ARGUMENT,
  message: `peerbroker: malformed '${MD_SESSION}' token (expected <nodeId>.<random>, at most ${MAX_TOKEN_LENGTH} characters)`,
});

/**
 * Applies the decision to every call before the handler runs, keeps the in-flight
 * count, starts and ends sessions. Handlers are wrapped once, at addService.
 */
export class CallGate {
  readonly stats: GateStats = { run: 0, redirected: 0, forwarded: 0, rejected: 0 };
  /** Response headers of an accepted call; shared because grpc-js only reads them. */
  private readonly acceptedHeaders = new Metadata();
  private readonly call: CallInfo = { path: '', service: '', hops: 0, follows: false, session: '', sessionOwner: '' };
  choice: PeerChoice;
  /** Mean time a local call holds its slot, ms (moving average); redirect accounting fades with it. */
  meanCallMs = 0;

  constructor(private readonly d: GateDeps) {
    this.acceptedHeaders.set(MD_NODE, d.nodeId);
    this.choice = d.choice;
  }

  /** Wraps a user handler of `method` so the decision runs first. */
  wrap(method: MethodDefinition<unknown, unknown>, service: string, handler: UntypedHandleCall): UntypedHandleCall {
    const h = handler as (call: Call, cb?: sendUnaryData<unknown>) => void;
    const path = method.path;
    // Unary and client-streaming calls end with a callback; the others end their stream.
    const withCallback = !method.responseStream;
    return ((call: Call, callback?: sendUnaryData<unknown>) => {
      const d = this.decideFor(path, service, call.metadata);
      if (d !== LOCAL) {
        if (d.kind === 'redirect' && !this.call.follows) {
          this.stats.forwarded++;
          this.countRedirect(d);
          this.d.forwarder.forward(method, call as never, d.peer.endpoint, callback);
          return;
        }
        const err = this.notLocal(d);
        if (withCallback) callback!(err, null);
        else call.emit('error', err);
        return;
      }
      this.runLocal(path, call, withCallback ? callback! : undefined, h, method.requestStream);
    }) as UntypedHandleCall;
  }

  /** The decision for a call to `path` with `md`, at this moment. */
  decideFor(path: string, service: string, md: Metadata): Decision {
    const call = this.call;
    call.path = path;
    call.service = service;
    call.follows = md.get(MD_FOLLOW)[0] === '1';
    call.hops = call.follows ? parseHops(md.get(MD_HOPS)[0], this.d.config.maxHops) : 0;
    const token = md.get(MD_SESSION)[0];
    if (token === undefined || token === '') {
      call.session = '';
      call.sessionOwner = '';
    } else {
      const owner = typeof token === 'string' ? tokenOwner(token) : null;
      if (owner === null) return MALFORMED_TOKEN;
      call.session = token as string;
      call.sessionOwner = owner;
    }
    const a = this.d.admission;
    const self = this.d.self;
    self.load = a.load();
    self.running = a.running;
    self.queued = a.queued;
    const now = performance.now();
    this.d.peers.fadeExtras(now, this.tauMs());
    return decide(call, self, this.d.peers.peers, this.d.config, this.choice, now);
  }

  private runLocal(
    path: string,
    call: Call,
    callback: sendUnaryData<unknown> | undefined,
    handler: (call: Call, cb?: sendUnaryData<unknown>) => void,
    requestStream: boolean,
  ): void {
    const follows = this.call.follows;
    const role = this.d.config.rules?.sessionRole(path) ?? null;
    const token = this.call.session;
    const opensSession = role !== null && role.enter;
    const closesSession = role !== null && role.exit && token !== '' && this.call.sessionOwner === this.d.nodeId;
    let headersSent = false;
    const sendHeaders = (sessionValue?: string) => {
      if (headersSent) return;
      headersSent = true;
      if (sessionValue === undefined) {
        if (follows) call.sendMetadata(this.acceptedHeaders);
        return;
      }
      const md = this.acceptedHeaders.clone();
      md.set(MD_SESSION, sessionValue);
      call.sendMetadata(md);
    };

    let done = false;
    let started = false;
    let startedAt = 0;
    const finish = () => {
      if (started && !done) {
        done = true;
        this.d.admission.release();
        const ms = performance.now() - startedAt;
        this.meanCallMs = this.meanCallMs === 0 ? ms : this.meanCallMs * 0.95 + ms * 0.05;
      }
    };
    const sendSessionHeaders = () => {
      if (opensSession) sendHeaders(this.d.sessions.open(Date.now(), role!.idleMs));
      else if (closesSession) {
        this.d.sessions.close(token);
        sendHeaders('');
      } else sendHeaders();
    };
    // A unary call's headers go with its answer: one write instead of two, and a session
    // starts or ends only when the call succeeded. Any other call sends its headers first: a
    // streamed answer needs them before its first message, and the stub holds streamed
    // requests until they arrive.
    const atAnswer = callback !== undefined && !requestStream;
    const start = () => {
      started = true;
      startedAt = performance.now();
      this.stats.run++;
      // Unary answers carry their headers in the same write as the message (no extra frame).
      if (!atAnswer) sendSessionHeaders();
      if (callback) {
        const cb: sendUnaryData<unknown> = (err, value, trailer, flags) => {
          finish();
          if (atAnswer && !err) sendSessionHeaders();
          else sendHeaders();
          callback(err, value, trailer, flags);
        };
        try {
          handler(call, cb);
        } catch (err) {
          cb({ code: status.UNKNOWN, details: `handler threw: ${(err as Error).message}` }, null);
        }
        return;
      }
      call.once('finish', finish);
      call.once('close', finish);
      handler(call);
    };
    const waiting = this.d.admission.admit(start);
    call.once('cancelled', () => (waiting && !waiting.started ? waiting.cancel() : finish()));
  }

  // Until calls were timed, a redirect counts for one reporting period.
  private tauMs(): number {
    return this.meanCallMs > 0 ? this.meanCallMs : this.d.periodMs();
  }

  private countRedirect(d: Redirect): void {
    this.stats.redirected++;
    this.d.peers.account(d.peer, performance.now(), this.tauMs());
    this.d.onRedirect?.(d);
  }

  /** The status a redirect or reject is sent as; counts it. */
  notLocal(d: Decision): ServerErrorResponse {
    if (d.kind === 'redirect') {
      this.countRedirect(d);
      const trailers = new Metadata();
      trailers.set(MD_LOCATION, d.peer.endpoint);
      trailers.set(MD_LOCATION_NODE, d.peer.nodeId);
      trailers.set(MD_REASON, d.reason);
      return {
        name: 'Redirect',
        message: '',
        code: status.RESOURCE_EXHAUSTED,
        details: `peerbroker: redirected to ${d.peer.nodeId} (${d.peer.endpoint}): ${d.detail}`,
        metadata: trailers,
      };
    }
    this.stats.rejected++;
    const message = d.kind === 'reject' ? d.message : 'peerbroker: internal decision error';
    return { name: 'Rejected', message, code: d.kind === 'reject' ? d.code : status.INTERNAL, details: message };
  }
}

/**
 * `peerbroker-hops` as a count. A value that is not a small non-negative integer is
 * treated as the hop limit: the call runs where it is and is never bounced again.
 */
export function parseHops(value: unknown, maxHops: number): number {
  if (value === undefined) return 0;
  if (typeof value !== 'string' || value.length > 3 || !/^\d+$/.test(value)) return maxHops;
  return Number(value);
}
