import { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { Metadata, status, type StatusObject } from '@grpc/grpc-js';
import { MD_LOCATION } from '../wire';
import {
  cancelledStatus,
  failoverTarget,
  followRedirect,
  isRedirect,
  markFollowing,
  neverSent,
  serviceError,
  takeSession,
  withHops,
  type StubContext,
} from './redirect-interceptor';

/** Default number of messages held (for replay) before the node accepts; more wait for the writer. */
export const DEFAULT_MAX_HELD_MESSAGES = 64;

type MethodDef = grpc.MethodDefinition<unknown, unknown>;

/**
 * A client-streaming or bidi call that follows redirects. Messages are held until a
 * node accepts the call (its response headers arrive), so a redirect can replay them
 * on the next node; once accepted, they flow straight through. At most
 * `maxHeldMessages` are held: past that, `write()` waits (backpressure).
 */
export class FollowingStream extends Duplex {
  private held: unknown[] = [];
  private heldWaiting?: () => void;
  private accepted = false;
  private writerEnded = false;
  private finished = false;
  private attempt?: grpc.ClientDuplexStream<unknown, unknown>;
  private endpoint: string;
  private readonly tried = new Set<string>();

  constructor(
    private readonly ctx: StubContext,
    private readonly def: MethodDef,
    private readonly metadata: Metadata,
    private readonly options: grpc.CallOptions,
    private readonly onAnswer?: (err: grpc.ServiceError | null, value?: unknown) => void,
  ) {
    super({ objectMode: true });
    this.endpoint = ctx.origin;
    this.start(ctx.origin, 0);
  }

  /** Cancels the call on whichever node has it. */
  cancel(): void {
    this.attempt?.cancel();
    // Also while a redirect is being followed (no attempt live): the next one must not start.
    process.nextTick(() => this.finish(cancelledStatus()));
  }

  /** The node serving the call now. */
  getPeer(): string {
    return this.attempt?.getPeer() ?? this.endpoint;
  }

  _write(message: unknown, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.finished) return cb();
    if (this.accepted) {
      this.attempt!.write(message, () => cb());
      return;
    }
    this.held.push(message);
    if (this.held.length < this.ctx.maxHeldMessages) cb();
    else this.heldWaiting = () => cb();
  }

  _final(cb: (err?: Error | null) => void): void {
    this.writerEnded = true;
    if (this.accepted) this.attempt!.end();
    cb();
  }

  _read(): void {
    this.attempt?.resume();
  }

  private start(endpoint: string, hops: number): void {
    this.endpoint = endpoint;
    const md = withHops(this.metadata, hops);
    markFollowing(this.ctx, md);
    const { path, requestSerialize, responseDeserialize } = this.def;
    const call = this.ctx.pool.client(endpoint).makeBidiStreamRequest(path, requestSerialize, responseDeserialize, md, this.options);
    this.attempt = call;
    call.on('metadata', (m: Metadata) => {
      if (m.get(MD_LOCATION).length > 0 || this.accepted) return;
      this.accepted = true;
      takeSession(this.ctx, m);
      for (const held of this.held) call.write(held);
      this.held = [];
      this.heldWaiting?.();
      this.heldWaiting = undefined;
      if (this.writerEnded) call.end();
      this.emit('metadata', m);
    });
    call.on('data', (m) => {
      if (this.onAnswer) this.answer = m;
      else if (!this.push(m)) call.pause();
    });
    call.on('error', () => {}); // the outcome arrives as 'status'
    call.on('status', (st: StatusObject) => {
      if (!this.accepted && isRedirect(st)) this.follow(st, hops + 1);
      else if (!this.accepted && neverSent(st) && this.failover(endpoint, hops)) return;
      else this.finish(st);
    });
  }

  private answer: unknown;

  // The node could not be reached and nothing was sent: every message is still held.
  private failover(endpoint: string, hops: number): boolean {
    this.tried.add(endpoint);
    const next = failoverTarget(this.ctx, this.tried);
    if (!next) return false;
    this.start(next, hops);
    return true;
  }

  private follow(st: StatusObject, hops: number): void {
    followRedirect(this.ctx, st, this.endpoint, hops, () => this.finished, (f) => this.finish(f), (location) => this.start(location, hops));
  }


  private finish(st: StatusObject): void {
    if (this.finished) return;
    this.finished = true;
    this.heldWaiting?.();
    this.emit('status', st);
    if (st.code === status.OK) {
      this.onAnswer?.(null, this.answer);
      this.push(null);
      return;
    }
    const err = serviceError(st);
    if (this.onAnswer) this.onAnswer(err);
    else this.destroy(err);
  }
}

/**
 * Splits the optional (metadata, options, callback) arguments of a method; `metadata`
 * is undefined when none was given (so a caller can skip copying it).
 */
export function callArgs(args: unknown[]): {
  metadata?: Metadata;
  options: grpc.CallOptions;
  callback?: (err: grpc.ServiceError | null, value?: unknown) => void;
} {
  let metadata: Metadata | undefined;
  let options: grpc.CallOptions = {};
  let callback: ((err: grpc.ServiceError | null, value?: unknown) => void) | undefined;
  for (const a of args) {
    if (a instanceof Metadata) metadata = a;
    else if (typeof a === 'function') callback = a as typeof callback;
    else if (a && typeof a === 'object') options = a as grpc.CallOptions;
  }
  return { metadata, options, callback };
}
