import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { Metadata, type ServerErrorResponse } from '@grpc/grpc-js';

/** What an HTTP call shares with its server-call object: known before the handler runs. */
export interface CallContext {
  path: string;
  /** The request's query as sent, with its `?`, or '' (the Location of a redirect keeps it). */
  search: string;
  metadata: Metadata;
  /** Absolute deadline, ms since the epoch, or Infinity. */
  deadline: number;
  /** The client's connection (`getPeer()` reads its address). */
  socket: { remoteAddress?: string; remotePort?: number };
  host: string;
}

/** The parts of grpc-js's server call that do not depend on the call kind. */
interface CallSurface {
  /** Read by the gate: a redirect of this call must name the peer's HTTP URL (a peer without one gets it relayed). */
  readonly redirectsByHttpUrl: true;
  getPeer(): string;
  getDeadline(): number;
  getPath(): string;
  getHost(): string;
  getAuthContext(): object;
}

// Shared by both call kinds' prototypes: nothing is made per call.
const SURFACE: CallSurface & ThisType<{ ctx: CallContext }> = {
  redirectsByHttpUrl: true,
  getPeer() {
    return `${this.ctx.socket.remoteAddress ?? ''}:${this.ctx.socket.remotePort ?? 0}`;
  },
  getDeadline() {
    return this.ctx.deadline;
  },
  getPath() {
    return this.ctx.path;
  },
  getHost() {
    return this.ctx.host;
  },
  getAuthContext() {
    return {};
  },
};

/**
 * Where a server-streaming call's messages go: the answer format (NDJSON or Connect
 * streaming) behind it. `message` returns false while the reader is behind.
 */
export interface StreamSink {
  headers(md: Metadata): void;
  message(value: unknown): boolean;
  /** Calls `cb` once the reader took what was written. */
  onDrain(cb: () => void): void;
  end(trailers: Metadata | undefined): void;
  /** Ends the answer with `err`. */
  fail(err: ServerErrorResponse): void;
}

/**
 * A unary call that came over HTTP, shaped as grpc-js's ServerUnaryCall: the gate,
 * the forwarder and the user's handler see what they see on a gRPC call.
 */
export class HttpUnaryCall extends EventEmitter {
  cancelled = false;
  readonly metadata: Metadata;
  /** Response headers sent by the gate or the handler (`sendMetadata`); never written into. */
  headers?: Metadata;

  constructor(
    readonly ctx: CallContext,
    readonly request: unknown,
  ) {
    super();
    this.metadata = ctx.metadata;
  }

  /** Keeps the headers for the answer (a unary answer sends them with its body). */
  sendMetadata(md: Metadata): void {
    // The gate sends one shared object: kept as is, copied only when a second must be merged in.
    if (!this.headers) this.headers = md;
    else {
      this.headers = this.headers.clone();
      this.headers.merge(md);
    }
  }

  /** The client went away or the deadline passed: handlers see `cancelled`, the gate frees the slot. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
  }
}

/**
 * A server-streaming call that came over HTTP, shaped as grpc-js's ServerWritableStream:
 * `write()` and `end()` go to the sink; an `'error'` (from the gate or the handler)
 * ends the call with that status, as grpc-js does.
 */
export class HttpStreamCall extends Writable {
  cancelled = false;
  readonly metadata: Metadata;
  private trailers?: Metadata;
  private failed = false;
  /** The write waiting for the reader to drain. */
  private waiting?: (err?: Error | null) => void;
  private readonly resume = () => {
    const done = this.waiting;
    this.waiting = undefined;
    done?.();
  };

  constructor(
    readonly ctx: CallContext,
    readonly request: unknown,
    private readonly sink: StreamSink,
  ) {
    super({ objectMode: true });
    this.metadata = ctx.metadata;
    this.on('error', (err: ServerErrorResponse) => {
      if (this.failed) return;
      this.failed = true;
      sink.fail(err);
      // The call's own end(), as grpc-js does on an error: the gate frees the slot when the stream ends.
      this.end();
    });
  }

  /** Response headers go out at once: a streamed answer needs them before its first message. */
  sendMetadata(md: Metadata): void {
    this.sink.headers(md);
  }

  _write(value: unknown, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.failed || this.cancelled || this.sink.message(value)) return done();
    this.waiting = done;
    this.sink.onDrain(this.resume);
  }

  _final(done: (err?: Error | null) => void): void {
    if (!this.failed && !this.cancelled) this.sink.end(this.trailers);
    done();
  }

  /** Ends the stream; `trailers` go with the end of the answer. */
  override end(...args: unknown[]): this {
    if (args[0] instanceof Metadata) this.trailers = args[0];
    return super.end();
  }

  /**
   * The client went away or the deadline passed: the handler sees `cancelled` and what it
   * writes is dropped; its slot is freed when it ends the stream (as on gRPC).
   */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
    // A write held back for a reader that will never read ends now, so the handler's end() can finish.
    this.resume();
  }
}

/** getPeer(), getDeadline(), getPath(), getHost(), getAuthContext(), from SURFACE. */
export interface HttpUnaryCall extends CallSurface {}
/** getPeer(), getDeadline(), getPath(), getHost(), getAuthContext(), from SURFACE. */
export interface HttpStreamCall extends CallSurface {}
Object.assign(HttpUnaryCall.prototype, SURFACE);
Object.assign(HttpStreamCall.prototype, SURFACE);
