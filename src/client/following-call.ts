import * as grpc from '@grpc/grpc-js';
import { Metadata, status, type StatusObject } from '@grpc/grpc-js';
import type { Span } from '@opentelemetry/api';
import { traceOutgoing, tracingOn } from '../tracing';
import type { PooledChannel } from '../transport';
import { MD_LOCATION, MD_REASON } from '../wire';
import { followingMetadata, takeSession, withHops, type MetadataLike } from './call-metadata';
import { MEMBERS_RECHECK_MS } from './membership';
import { deadlineWhile, failoverTarget, nextStep, refusedRedirect } from './outcome';
import type { StubContext } from './stub-context';

/** grpc-js's call below the interceptors, as `Channel.createCall` returns it: what a `FollowingCall` is, and what each attempt is. */
export type Call = ReturnType<grpc.ChannelInterface['createCall']>;
type Listener = grpc.InterceptingListener;
type MessageContext = Parameters<Call['sendMessageWithContext']>[0];
type WriteCallback = NonNullable<MessageContext['callback']>;

/** What a call is: fixed for every attempt (what `Channel.createCall` gets, and the method's kind). */
export interface CallTarget {
  /** `/pkg.Service/Method`. */
  path: string;
  /** Absolute; the same for every attempt, so redirects never extend it. */
  deadline: grpc.Deadline;
  host?: string | null;
  parent?: Parameters<grpc.ChannelInterface['createCall']>[3];
  flags?: number | null;
  /** The client streams its request (client-streaming, bidi); a unary request is one message. */
  requestStream: boolean;
}

/** One attempt: a grpc-js call on the pooled channel of one endpoint. */
interface Attempt {
  readonly call: Call;
  readonly endpoint: string;
  readonly channel: PooledChannel;
  /** The channel's readiness when the attempt started: tells later whether the request may have left. */
  readonly mark: number;
  halfClosed: boolean;
}

/** A request message on its way: held for replay until the node accepts, or passed through after. */
interface Outgoing {
  message: Buffer;
  flags?: number;
  /** The writer's callback, for a message written after the node accepted: called once it is written. */
  callback?: WriteCallback;
}

/** The context of a message given without a callback: shared, as grpc-js only reads it. */
export const NO_CONTEXT: MessageContext = Object.freeze({});

/**
 * The stub's one attempt loop, for every call kind. It is a grpc-js `Call` (what a channel's
 * `createCall` returns), so grpc-js's client, its interceptors and its stream objects run on
 * top of it unchanged (`StubChannel`), and the direct unary path drives it itself. Each attempt
 * is a call on a pooled channel; when one ends, `nextStep` says whether the call ends, follows
 * a redirect or moves to another member, and the request is sent again from what was held.
 *
 * Request messages are sent at once and a copy is held until a node accepts the call (its
 * response headers): a redirect comes before that, so the copies are replayed on the next node.
 * A unary request's one message is held for the whole call (an idempotent call may be retried
 * until an answer arrives). At most `maxHeldMessages` are held: past that the writer's callback
 * waits until the node accepts. grpc-js's calls take one message at a time (the next after the
 * previous one's callback), so each attempt is fed from the queue by `pump()`.
 */
export class FollowingCall implements Call {
  private listener?: Listener;
  private metadata!: Metadata;
  private credentials?: grpc.CallCredentials;
  private current?: Attempt;
  private endpoint = '';
  private finished = false;
  private accepted = false;
  private delivered = 0;
  private hops = 0;
  /** Messages held for replay (before `handed`: given to the current attempt) and messages not yet given. */
  private readonly queue: Outgoing[] = [];
  private handed = 0;
  /** The last message given to the current attempt awaits its callback (streaming requests only). */
  private writing = false;
  /** The writer's callback, waiting for room among the held messages. */
  private parked?: WriteCallback;
  private halfClosed = false;
  private readPending = false;
  private tried?: Set<string>;
  private waitTimer?: NodeJS.Timeout;
  private endStatus?: StatusObject;
  private endDelivered = false;
  /** The caller's span (tracing on): redirects and failovers are events on it. */
  private span?: Span;

  constructor(
    private readonly ctx: StubContext,
    private readonly target: CallTarget,
  ) {}

  /** Starts the first attempt, at the endpoint routing chooses; `metadata` is copied, never written into. */
  start(metadata: MetadataLike | undefined, listener: Listener): void {
    this.listener = listener;
    // Cancelled before it started (an interceptor may hold `start` back): nothing is sent.
    if (this.finished) return void process.nextTick(() => this.deliverEnd());
    const now = performance.now();
    const routing = this.ctx.routing;
    this.metadata = followingMetadata(metadata, this.ctx.session.token, routing.follow(now), routing.wantsAdvice(now));
    if (tracingOn()) this.span = traceOutgoing(this.metadata);
    // A call of a session goes straight to the node that owns it; any other where routing says.
    const session = this.ctx.session;
    this.send(session.token && session.endpoint ? session.endpoint : routing.firstEndpoint(now));
  }

  sendMessageWithContext(context: MessageContext, message: Buffer): void {
    if (this.finished) return context.callback?.();
    if (this.accepted && this.target.requestStream) {
      // Accepted: no redirect can come; the writer goes on once the node's call took the message.
      this.queue.push({ message, flags: context.flags, callback: context.callback });
    } else {
      this.queue.push({ message, flags: context.flags });
      if (context.callback) {
        if (!this.target.requestStream || this.queue.length < this.ctx.maxHeldMessages) context.callback();
        else this.parked = context.callback;
      }
    }
    this.pump();
  }

  halfClose(): void {
    this.halfClosed = true;
    if (!this.finished) this.pump();
  }

  startRead(): void {
    this.readPending = true;
    if (!this.finished) this.current?.call.startRead();
  }

  /**
   * Ends the call with `code` wherever it is, also between a redirect and the next attempt.
   * `finished` is set before anything else, so nothing resolving later (a member check in the
   * same microtask drain) can send another attempt. The status follows on the next tick, as
   * grpc-js's own calls deliver it.
   */
  cancelWithStatus(code: grpc.status, details: string): void {
    if (this.finished) return;
    this.finished = true;
    this.stopWaiting();
    this.current?.call.cancelWithStatus(code, details);
    this.releaseWriters();
    this.endStatus = { code, details, metadata: new Metadata() };
    process.nextTick(() => this.deliverEnd());
  }

  /** The node of the current (or last) attempt. */
  getPeer(): string {
    return this.current?.call.getPeer() ?? this.endpoint;
  }

  getCallNumber(): number {
    return this.current?.call.getCallNumber() ?? 0;
  }

  setCredentials(credentials: grpc.CallCredentials): void {
    this.credentials = credentials;
    this.current?.call.setCredentials(credentials);
  }

  getAuthContext(): ReturnType<Call['getAuthContext']> {
    // grpc-js calls have getAuthContext from 1.13 on; the peer range starts at 1.12.
    return this.current?.call.getAuthContext?.() ?? null;
  }

  private send(endpoint: string): void {
    this.endpoint = endpoint;
    const { path, deadline, host, parent, flags } = this.target;
    let channel: PooledChannel | undefined;
    let call: Call;
    try {
      channel = this.ctx.pool.acquire(endpoint);
      call = channel.channel.createCall(path, deadline, host, parent ?? null, flags);
    } catch (e) {
      // The client was closed (its pool with it). Reported on the next tick, as a status always is.
      if (channel) this.ctx.pool.release(channel);
      this.current = undefined;
      const st = { code: status.UNAVAILABLE, details: `peerbroker: cannot call ${endpoint}: ${(e as Error).message}`, metadata: new Metadata() };
      return void process.nextTick(() => this.finish(st));
    }
    if (this.credentials) call.setCredentials(this.credentials);
    const attempt: Attempt = { call, endpoint, channel, mark: channel.readyMark(), halfClosed: false };
    this.current = attempt;
    this.accepted = false;
    this.handed = 0;
    this.writing = false;
    // The first attempt sends the metadata as built; later ones a copy counting the redirects.
    const md = this.hops === 0 && this.tried === undefined ? this.metadata : withHops(this.metadata, this.hops);
    // Attempts start only after start(): the listener is set from here on.
    call.start(md, {
      onReceiveMetadata: (m) => this.onHeaders(attempt, m),
      onReceiveMessage: (m) => this.onMessage(attempt, m),
      onReceiveStatus: (st) => this.onStatus(attempt, st),
    });
    this.pump();
    if (this.readPending) call.startRead();
  }

  /** Gives the current attempt the next queued message (one at a time), then its half-close. */
  private pump(): void {
    const attempt = this.current;
    if (!attempt) return;
    if (!this.writing && this.handed < this.queue.length) {
      const out = this.queue[this.handed++];
      if (this.target.requestStream) {
        this.writing = true;
        attempt.call.sendMessageWithContext({ flags: out.flags, callback: () => this.written(attempt) }, out.message);
      } else {
        // A unary request is one message: no next one to wait for.
        attempt.call.sendMessageWithContext(out.flags === undefined ? NO_CONTEXT : { flags: out.flags }, out.message);
      }
    }
    // grpc-js takes a half-close right behind a message not yet written (its own unary calls do
    // so): END_STREAM then leaves with the last message rather than in a frame of its own.
    // Streamed requests wait for the last write to finish: older grpc-js (1.12.0 to 1.14.0 at
    // least; the peer range starts at 1.12) loses a message still being written when the
    // half-close comes (test/integration/streaming.test.ts, run on those versions).
    const lastWritten = !this.target.requestStream || !this.writing;
    if (this.halfClosed && !attempt.halfClosed && this.handed === this.queue.length && lastWritten) {
      attempt.halfClosed = true;
      attempt.call.halfClose();
    }
  }

  private written(attempt: Attempt): void {
    if (attempt !== this.current) return;
    this.writing = false;
    if (this.accepted) {
      // Past acceptance nothing is held: the message leaves the queue, its writer goes on.
      this.handed--;
      this.queue.shift()?.callback?.();
    }
    if (!this.finished) this.pump();
  }

  private onHeaders(attempt: Attempt, headers: Metadata): void {
    if (attempt !== this.current || this.finished || headers.get(MD_LOCATION).length > 0) return;
    this.accepted = true;
    takeSession(this.ctx.session, headers, attempt.endpoint);
    this.ctx.routing.onHeaders(headers);
    if (this.target.requestStream) {
      // No redirect can come now: drop the copies already written (not one still being
      // written: `written()` drops it), and let a waiting writer go on.
      const done = this.writing ? this.handed - 1 : this.handed;
      this.queue.splice(0, done);
      this.handed -= done;
      this.releaseWriters();
    }
    this.listener!.onReceiveMetadata(headers);
  }

  private onMessage(attempt: Attempt, message: Buffer): void {
    if (attempt !== this.current || this.finished) return;
    this.delivered++;
    this.readPending = false;
    this.listener!.onReceiveMessage(message);
  }

  private onStatus(attempt: Attempt, st: StatusObject): void {
    this.ctx.pool.release(attempt.channel);
    // Every answer of every attempt, redirects included, is read here (routing.ts).
    this.ctx.routing.onAnswer(attempt.endpoint, st, this.accepted);
    if (attempt !== this.current || this.finished) return;
    this.current = undefined;
    if (st.code === status.OK) return this.finish(st);
    const step = nextStep(st, {
      accepted: this.accepted,
      replayable: !this.accepted || (!this.target.requestStream && this.delivered === 0),
      neverSent: !this.accepted && neverLeft(attempt),
      idempotent: this.delivered === 0 && this.ctx.idempotent.has(this.target.path),
      hops: this.hops,
      maxRedirects: this.ctx.maxRedirects,
      endpoint: attempt.endpoint,
    });
    if (step.kind === 'finish') return this.finish(step.status);
    if (step.kind === 'redirect') {
      this.span?.addEvent('peerbroker.redirect', {
        'peerbroker.from': attempt.endpoint,
        'peerbroker.to': step.location,
        'peerbroker.to.node': step.node,
        'peerbroker.reason': String(st.metadata.get(MD_REASON)[0] ?? ''),
        'peerbroker.hop': this.hops + 1,
      });
      return this.follow(step.location, step.node, attempt.endpoint);
    }
    (this.tried ??= new Set()).add(attempt.endpoint);
    const next = failoverTarget(this.ctx.members.all(), this.tried, this.ctx.maxFailovers);
    if (!next) return this.finish(step.otherwise);
    this.ctx.stats.failovers++;
    this.span?.addEvent('peerbroker.failover', { 'peerbroker.from': attempt.endpoint, 'peerbroker.to': next, 'rpc.grpc.status_code': st.code });
    this.send(next);
  }

  /** Follows a redirect to a member: at once when known, after one refresh of the member list otherwise. */
  private follow(location: string, node: string, from: string): void {
    this.hops++;
    if (this.ctx.members.has(location)) return this.redirectTo(location);
    // A node that joined since the last refresh: ask again, waiting no longer than the call's deadline.
    this.waitUntilDeadline(`learning whether '${location}' is a member of the cluster`);
    void this.ctx.members.refreshIfOlder(MEMBERS_RECHECK_MS, from).then(() => {
      if (this.finished) return;
      this.stopWaiting();
      if (this.ctx.members.has(location)) return this.redirectTo(location);
      this.ctx.stats.redirectsRefused++;
      this.span?.addEvent('peerbroker.redirect_refused', { 'peerbroker.to': location, 'peerbroker.to.node': node });
      this.finish(refusedRedirect(location, node));
    });
  }

  private redirectTo(location: string): void {
    this.ctx.stats.redirectsFollowed++;
    this.send(location);
  }

  private finish(st: StatusObject): void {
    if (this.finished) return;
    this.finished = true;
    this.stopWaiting();
    this.releaseWriters();
    this.endStatus = st;
    this.deliverEnd();
  }

  /** Gives the application the call's status, once, when there is a listener to take it. */
  private deliverEnd(): void {
    if (this.endDelivered || !this.listener || !this.endStatus) return;
    this.endDelivered = true;
    this.listener.onReceiveStatus(this.endStatus);
  }

  /** Writers waiting (for room among the held messages, or for a write) go on: accepted, or the call ended. */
  private releaseWriters(): void {
    const cb = this.parked;
    this.parked = undefined;
    cb?.();
    if (!this.finished) return;
    for (const out of this.queue) {
      const waiting = out.callback;
      out.callback = undefined;
      waiting?.();
    }
  }

  // No attempt is out to end the call at its deadline, so the stub does.
  private waitUntilDeadline(what: string): void {
    const d = this.target.deadline;
    const ms = (d instanceof Date ? d.getTime() : d) - Date.now();
    if (Number.isNaN(ms) || ms === Infinity) return;
    this.waitTimer = setTimeout(() => this.finish(deadlineWhile(what)), Math.max(0, ms));
    this.waitTimer.unref();
  }

  private stopWaiting(): void {
    clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
  }
}

/**
 * True when an attempt's request cannot have reached a server, from grpc-js's public API only.
 * Two signs, each enough: the channel was never READY while the attempt ran (grpc-js sends only
 * on a READY connection), or the call never got a connection (a call's peer is the connection's
 * address once it has one, the channel's target before: a channel READY when the attempt began
 * may have lost its connection before the call was placed). Any doubt counts as sent.
 */
function neverLeft(attempt: Attempt): boolean {
  return !attempt.channel.connectedSince(attempt.mark) || attempt.call.getPeer() === attempt.channel.channel.getTarget();
}
