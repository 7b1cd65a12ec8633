import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { Metadata, status, type StatusObject } from '@grpc/grpc-js';
import type { MetadataLike } from './call-metadata';
import { FollowingCall, NO_CONTEXT } from './following-call';
import type { StubContext } from './stub-context';

type MethodDef = grpc.MethodDefinition<unknown, unknown>;
type UnaryCallback = (err: grpc.ServiceError | null, value?: unknown) => void;

/**
 * A unary call made on the stub's `FollowingCall` directly, without grpc-js's client and
 * interceptor layers (used when the application set no interceptors): a local call costs the
 * client no more than a plain grpc-js call. It looks to the application like grpc-js's
 * `ClientUnaryCall`: `metadata` and `status` once, for the attempt that answered; `cancel()`.
 */
export class DirectUnaryCall extends EventEmitter implements grpc.ClientUnaryCall, grpc.InterceptingListener {
  private engine?: FollowingCall;
  private response: unknown;
  private responded = false;
  private done = false;

  constructor(
    ctx: StubContext,
    private readonly def: MethodDef,
    request: unknown,
    metadata: MetadataLike | undefined,
    options: grpc.CallOptions,
    private readonly callback: UnaryCallback,
  ) {
    super();
    let bytes: Buffer;
    try {
      bytes = def.requestSerialize(request);
    } catch (e) {
      // Nothing is sent (grpc-js would start the call, then cancel it).
      const details = `Request message serialization failure: ${(e as Error).message}`;
      process.nextTick(() => this.onReceiveStatus({ code: status.INTERNAL, details, metadata: new Metadata() }));
      return;
    }
    const engine = new FollowingCall(ctx, {
      path: def.path,
      deadline: options.deadline ?? Infinity,
      host: options.host,
      parent: options.parent,
      flags: options.propagate_flags,
      requestStream: false,
    });
    if (options.credentials) engine.setCredentials(options.credentials);
    this.engine = engine;
    engine.start(metadata, this);
    engine.sendMessageWithContext(NO_CONTEXT, bytes);
    engine.halfClose();
    engine.startRead();
  }

  /** Cancels the call on whichever node has it; also while a redirect is being followed. */
  cancel(): void {
    this.engine?.cancelWithStatus(status.CANCELLED, 'Cancelled on client');
  }

  /** The node the call went to last. */
  getPeer(): string {
    return this.engine?.getPeer() ?? 'unknown';
  }

  getAuthContext(): ReturnType<grpc.ClientUnaryCall['getAuthContext']> {
    return this.engine?.getAuthContext() ?? null;
  }

  onReceiveMetadata(headers: Metadata): void {
    this.emit('metadata', headers);
  }

  onReceiveMessage(bytes: Buffer): void {
    if (this.responded) return this.engine!.cancelWithStatus(status.UNIMPLEMENTED, 'Too many responses received');
    try {
      this.response = this.def.responseDeserialize(bytes);
      this.responded = true;
    } catch (e) {
      this.engine!.cancelWithStatus(status.INTERNAL, `Response message parsing error: ${(e as Error).message}`);
    }
  }

  onReceiveStatus(st: StatusObject): void {
    if (this.done) return;
    this.done = true;
    if (st.code !== status.OK) this.callback(serviceError(st));
    else if (!this.responded) this.callback(serviceError({ code: status.UNIMPLEMENTED, details: 'No message received', metadata: st.metadata }));
    else this.callback(null, this.response);
    this.emit('status', st);
  }
}

/** The error grpc-js gives a callback for a status (same message shape). */
function serviceError(st: StatusObject): grpc.ServiceError {
  return Object.assign(new Error(`${st.code} ${status[st.code]}: ${st.details}`), st) as grpc.ServiceError;
}
