import { status, type Metadata, type sendUnaryData } from '@grpc/grpc-js';
import type { Context } from '@opentelemetry/api';
import { MD_ADVICE, MD_SESSION } from '../wire';
import { Ticket, type Admission } from './admission';
import { runTraced, traceEnd, traceEvent, traceStatus } from './call-tracing';
import type { SessionInfo, SessionTable } from './session-table';

/** The server call as the gate uses it (every grpc-js server call kind has these). */
export type Call = NodeJS.EventEmitter & { metadata: Metadata; sendMetadata(md: Metadata): void; cancelled?: boolean };
/** A user handler, unary and client-streaming ones with their callback. */
export type Handler = (call: Call, cb?: sendUnaryData<unknown>) => void;

/** Counters of what the gate did, since start. */
export interface GateStats {
  run: number;
  redirected: number;
  forwarded: number;
  rejected: number;
}

/** The method a local call is a call of. */
export interface CallTarget {
  /** `/pkg.Service/Method`. */
  readonly path: string;
  /** `pkg.Service`. */
  readonly service: string;
}

/** What a local call needs of its gate. */
export interface LocalCallHost {
  readonly admission: Admission;
  readonly sessions: SessionTable;
  /**
   * Response headers of an accepted call. Sent as they are while `shareHeaders` (grpc-js only
   * reads them); a copy for each call when server interceptors run, since grpc-js hands the
   * object to theirs and one may add to it.
   */
  readonly acceptedHeaders: Metadata;
  readonly shareHeaders: boolean;
  readonly stats: GateStats;
  /** How long the handler of a cancelled call keeps its slot at most, ms. */
  cancelGraceMs(): number;
  /** The `peerbroker-advice` value for calls of `service` now ('' when there is none). */
  advice(service: string): string;
  /** The call held its slot `ms`; `overran` when it was taken back after the cancel grace. */
  ended(ms: number, overran: boolean, path: string): void;
}

/** Default longest time the handler of a cancelled call keeps its slot, ms. */
export const DEFAULT_CANCEL_GRACE_MS = 30_000;

/** Flags of a local call (bits of `LocalCall.mode`). */
export const FOLLOWS = 1;
/** A unary call: its headers go with its answer. */
export const AT_ANSWER = 2;
/** An enter call: it opens a session (its place is reserved). */
export const OPENS = 4;
/** An exit call of a session this node owns. */
export const CLOSES = 8;
/** The client asked for the current advice in the response headers. */
export const ADVISE = 16;
/** A within or exit call of a session this node owns. */
export const IN_SESSION = 32;

const WAITING = 0;
const RUNNING = 1;
const DONE = 2;

/** The call a gate-wrapped stream keeps its LocalCall under. */
const RUN = Symbol('peerbroker.localCall');
type Tagged = Call & { [RUN]: LocalCall; end(...args: unknown[]): unknown };

/**
 * A call that runs on this node: it waits for a slot, runs the handler, sends the
 * response headers (with the session token of an enter or exit call), and gives the
 * slot back when the handler has really ended: when it answers (unary, client
 * streaming) or ends its side of the stream. A cancel or deadline does not end a
 * handler: its slot stays taken until it does, or `cancelGraceMs` after the cancel.
 *
 * One object per call; the listeners it needs on the call are shared functions.
 */
export class LocalCall extends Ticket {
  private phase = WAITING;
  private answered = false;
  private headersSent = false;
  /** The client went away (cancel, deadline) while the handler ran. */
  private cancelled = false;
  /** Holds a session place reserved by the gate (OPENS), not yet used or given back. */
  private holdsPlace: boolean;
  private startedAt = 0;
  private grace: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: LocalCallHost,
    private readonly call: Call,
    private readonly callback: sendUnaryData<unknown> | undefined,
    private readonly handler: Handler,
    private readonly target: CallTarget,
    private readonly mode: number,
    /** The call's session token; for an enter call, the token it issues (made when it starts). */
    private token: string,
    private readonly idleMs: number,
    /** The context of the call's span, when tracing is on. */
    private readonly traced: Context | undefined,
  ) {
    super();
    this.holdsPlace = (mode & OPENS) !== 0;
    (call as Tagged)[RUN] = this;
    call.on('cancelled', onCancelled);
  }

  /** Never got a slot (the queue was full, or it was cancelled while waiting): gives back what it held. */
  refuse(): void {
    this.phase = DONE;
    this.dropPlace();
  }

  /** The session of this call (see `sessionOf`). */
  session(): SessionInfo | undefined {
    const sessions = this.host.sessions;
    if ((this.mode & OPENS) !== 0) {
      if (this.phase === WAITING) return undefined;
      return this.holdsPlace ? sessions.pending(this.token, Date.now(), this.idleMs, this.target.path) : sessions.info(this.token);
    }
    return (this.mode & IN_SESSION) !== 0 ? sessions.info(this.token) : undefined;
  }

  /** Runs the handler; called by the admission when the call has its slot. */
  start(): void {
    this.phase = RUNNING;
    this.startedAt = performance.now();
    this.host.stats.run++;
    // Issued before the handler runs, so the handler can learn it (sessionOf).
    if ((this.mode & OPENS) !== 0) this.token = this.host.sessions.newToken();
    if (this.traced !== undefined) {
      traceEvent(this.traced, 'peerbroker.started');
      return runTraced(this.traced, () => this.run());
    }
    this.run();
  }

  private run(): void {
    // Unary answers carry their headers in the same write as the message (no extra frame).
    // Any other call sends them first: a streamed answer needs them before its first
    // message, and the stub holds streamed requests until they arrive.
    if ((this.mode & AT_ANSWER) === 0) this.sendSessionHeaders();
    if (this.callback !== undefined) {
      const cb: sendUnaryData<unknown> = (err, value, trailer, flags) => this.answer(err, value, trailer, flags);
      try {
        this.handler(this.call, cb);
      } catch (err) {
        cb({ code: status.UNKNOWN, details: `handler threw: ${(err as Error).message}` }, null);
      }
      return;
    }
    // A cancelled stream is destroyed, so 'finish' never comes: the handler ending its
    // side (end(), also when grpc-js ends it on an emitted error) is what frees the slot.
    const call = this.call as Tagged;
    call.end = endThenFinish;
    call.on('close', onClose);
    try {
      this.handler(call);
    } catch (err) {
      call.emit('error', { code: status.UNKNOWN, details: `handler threw: ${(err as Error).message}` });
      this.finish();
    }
  }

  // Only the first answer counts: a second would open a second session, and grpc-js drops it anyway.
  private answer(err: Parameters<sendUnaryData<unknown>>[0], value: unknown, trailer?: Metadata, flags?: number): void {
    if (this.answered) return;
    this.answered = true;
    if (this.traced !== undefined) traceStatus(this.traced, err ? (err.code ?? status.UNKNOWN) : status.OK, err?.details);
    if ((this.mode & AT_ANSWER) !== 0 && !err && !this.cancelled) this.sendSessionHeaders();
    else {
      // The handler issued the token (it may have kept state under it), but the client is gone
      // and never gets it: no session opens, and the listeners hear of it now, not never.
      if ((this.mode & (OPENS | AT_ANSWER)) === (OPENS | AT_ANSWER) && !err) this.host.sessions.abort(this.token, Date.now(), this.idleMs, this.target.path);
      this.sendHeaders(undefined);
    }
    // The answer is handed to grpc-js before the slot goes to the next call.
    this.callback!(err, value, trailer, flags);
    this.finish();
  }

  /** The client cancelled, or the deadline passed (grpc-js also says so after a normal end). */
  onCancel(): void {
    if (this.phase === WAITING) {
      if (!this.host.admission.cancel(this)) return;
      this.refuse();
      if (this.traced !== undefined) {
        traceEvent(this.traced, 'peerbroker.cancelled');
        traceEnd(this.traced);
      }
      return;
    }
    if (this.phase !== RUNNING || this.cancelled) return;
    this.cancelled = true;
    if (this.traced !== undefined) traceEvent(this.traced, 'peerbroker.cancelled');
    this.grace = setTimeout(graceOver, this.host.cancelGraceMs(), this);
    this.grace.unref();
  }

  /** The handler ended (answered, ended its stream, or the stream closed without a cancel). */
  finish(overran = false): void {
    if (this.phase !== RUNNING) return;
    this.phase = DONE;
    if (this.grace !== undefined) clearTimeout(this.grace);
    this.dropPlace();
    this.host.admission.release();
    this.host.ended(performance.now() - this.startedAt, overran, this.target.path);
    if (this.traced !== undefined) traceEnd(this.traced);
  }

  /** @internal the cancel grace passed and the handler still runs: it is no longer counted. */
  overran(): void {
    this.grace = undefined;
    this.finish(true);
  }

  private dropPlace(): void {
    if (this.holdsPlace) {
      this.holdsPlace = false;
      this.host.sessions.unreserve();
    }
  }

  private sendSessionHeaders(): void {
    if ((this.mode & OPENS) !== 0) {
      this.holdsPlace = false;
      this.host.sessions.open(this.token, Date.now(), this.idleMs, this.target.path);
      this.sendHeaders(this.token);
    } else if ((this.mode & CLOSES) !== 0) {
      this.host.sessions.close(this.token);
      this.sendHeaders('');
    } else this.sendHeaders(undefined);
  }

  private sendHeaders(sessionValue: string | undefined): void {
    if (this.headersSent) return;
    this.headersSent = true;
    const h = this.host;
    const advice = (this.mode & ADVISE) !== 0 ? h.advice(this.target.service) : '';
    if (sessionValue === undefined && advice === '') {
      if ((this.mode & FOLLOWS) !== 0) this.call.sendMetadata(h.shareHeaders ? h.acceptedHeaders : h.acceptedHeaders.clone());
      return;
    }
    const md = h.acceptedHeaders.clone();
    if (sessionValue !== undefined) md.set(MD_SESSION, sessionValue);
    if (advice !== '') md.set(MD_ADVICE, advice);
    this.call.sendMetadata(md);
  }
}

/**
 * The session of a call, for its handler: the session an enter call opens (its token, known
 * before the handler answers), or the one a within or exit call belongs to; undefined for any
 * other call. `call` is the call object the handler was given.
 */
export function sessionOf(call: object): SessionInfo | undefined {
  return (call as Partial<Tagged>)[RUN]?.session();
}

// Shared listeners: `this` is the call, which carries its LocalCall.
function onCancelled(this: Call): void {
  (this as Tagged)[RUN].onCancel();
}

function onClose(this: Call): void {
  // A cancel closes the stream too, but the handler may still run: end() or the grace decides.
  if (this.cancelled !== true) (this as Tagged)[RUN].finish();
}

function endThenFinish(this: Tagged): unknown {
  const r = (Object.getPrototypeOf(this) as { end: (...a: unknown[]) => unknown }).end.apply(this, arguments as unknown as unknown[]);
  this[RUN].finish();
  return r;
}

function graceOver(run: LocalCall): void {
  run.overran();
}
