import * as grpc from '@grpc/grpc-js';
import { Metadata, status, type MethodDefinition, type ServerErrorResponse, type StatusObject } from '@grpc/grpc-js';
import type { Context } from '@opentelemetry/api';
import { ChannelPool, DEFAULT_MAX_CHANNELS } from '../transport';
import { TokenBucket } from './token-bucket';
import { HOPS_FORWARDED, MD_FOLLOW, MD_HOPS } from '../wire';
import { injectTrace, traceEnd, traceStatus } from './call-tracing';

type AnyServerCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

/**
 * Cancels of relayed unary calls passed on to one peer: a burst, then a rate per second.
 * Node's HTTP/2 server (nghttp2) closes a connection whose client sent more than 1 000
 * stream resets, then more than 33 a second (the guard against rapid-reset floods), and
 * every call on it fails; the relayed calls of all plain clients share one connection, so
 * their cancels add up. Past the budget a cancelled unary call is left to finish on the
 * peer and its answer is dropped: it costs the peer that call, never the connection.
 */
export const CANCEL_RELAY_BURST = 500;
/** See CANCEL_RELAY_BURST. */
export const CANCEL_RELAY_PER_SEC = 20;

// Headers grpc-js and HTTP/2 set themselves; copying them would duplicate or corrupt them.
const HOP_BY_HOP = new Set(['content-type', 'user-agent', 'te', 'host', 'accept-encoding', 'grpc-accept-encoding', 'grpc-encoding', 'grpc-timeout']);

/**
 * Relays calls of clients that do not follow redirects to the peer the decision
 * chose (`forwardLegacy`), and relays the answer back. The call is marked forwarded
 * (`peerbroker-hops: forwarded`), so the peer runs it or fails it and never sends it
 * on: a redirect would reach a client that cannot follow it.
 */
export class Forwarder {
  private readonly pool: ChannelPool;
  /**
   * Cancels each peer connection may still be sent (see CANCEL_RELAY_BURST). Bounded as the
   * pool's channels are: past its bound, the budgets of peers whose channel the pool closed
   * go (a new connection starts with a clean count on the peer's side too).
   */
  private readonly cancelBudget = new Map<string, TokenBucket>();

  constructor(credentials?: grpc.ChannelCredentials) {
    this.pool = new ChannelPool(credentials ?? grpc.credentials.createInsecure());
  }

  /**
   * Forwards `call` of `method` to `endpoint`; `done` gets the unary/client-streaming answer.
   * The caller's trace context goes along (the metadata is copied); with `traced`, the
   * context of this node's span for the call instead, so the peer's span is its child.
   */
  forward(
    method: MethodDefinition<unknown, unknown>,
    call: AnyServerCall,
    endpoint: string,
    done?: grpc.sendUnaryData<unknown>,
    traced?: Context,
  ): void {
    // Held for the call: the pool's bound and idle sweep close only channels no call holds.
    const held = this.pool.acquire(endpoint);
    const client = this.pool.client(endpoint);
    const md = this.outgoing(call.metadata);
    if (traced !== undefined) injectTrace(traced, md);
    const deadline = call.getDeadline();
    const opts: grpc.CallOptions = { deadline: deadline === Infinity ? undefined : deadline };
    const { path, requestSerialize: ser, responseDeserialize: de } = method;
    const relayHeaders = (m: Metadata) => call.sendMetadata(m);
    let upstream: grpc.ClientUnaryCall | grpc.ClientWritableStream<unknown> | grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>;

    if (!method.requestStream) {
      const request = (call as grpc.ServerUnaryCall<unknown, unknown>).request;
      if (!method.responseStream) {
        let value: unknown;
        upstream = client.makeUnaryRequest(path, ser, de, request, md, opts, (_e, v) => (value = v));
        upstream.on('status', (st: StatusObject) => (st.code === status.OK ? done!(null, value, st.metadata) : done!(toError(st))));
      } else {
        const up = client.makeServerStreamRequest(path, ser, de, request, md, opts);
        this.relayStream(up, call as grpc.ServerWritableStream<unknown, unknown>);
        upstream = up;
      }
    } else if (!method.responseStream) {
      let value: unknown;
      const up = client.makeClientStreamRequest(path, ser, de, md, opts, (_e, v) => (value = v));
      up.on('status', (st: StatusObject) => (st.code === status.OK ? done!(null, value, st.metadata) : done!(toError(st))));
      pipeRequests(call as grpc.ServerReadableStream<unknown, unknown>, up);
      upstream = up;
    } else {
      const up = client.makeBidiStreamRequest(path, ser, de, md, opts);
      pipeRequests(call as grpc.ServerDuplexStream<unknown, unknown>, up);
      this.relayStream(up, call as grpc.ServerDuplexStream<unknown, unknown>);
      upstream = up;
    }
    upstream.on('metadata', relayHeaders);
    if (traced !== undefined) {
      upstream.on('status', (st: StatusObject) => {
        traceStatus(traced, st.code, st.details);
        traceEnd(traced);
      });
    }
    // grpc-js says 'cancelled' after a normal end too: only a call still running upstream is
    // cancelled. Streams always (they may run long); unary calls while the budget lasts.
    let upstreamEnded = false;
    upstream.on('status', () => {
      upstreamEnded = true;
      this.pool.release(held);
    });
    const unary = !method.requestStream && !method.responseStream;
    (call as NodeJS.EventEmitter).on('cancelled', () => {
      if (!upstreamEnded && (!unary || this.mayCancel(endpoint))) upstream.cancel();
    });
  }

  // One token per relayed cancel, refilled at CANCEL_RELAY_PER_SEC up to CANCEL_RELAY_BURST.
  private mayCancel(endpoint: string): boolean {
    const now = performance.now();
    let b = this.cancelBudget.get(endpoint);
    if (!b) {
      if (this.cancelBudget.size >= DEFAULT_MAX_CHANNELS) this.forgetClosed();
      b = new TokenBucket(CANCEL_RELAY_BURST, CANCEL_RELAY_PER_SEC, now);
      this.cancelBudget.set(endpoint, b);
    }
    return b.take(now);
  }

  // The budgets of peers the pool holds no channel to any more: their connection is gone.
  private forgetClosed(): void {
    const open = new Set(this.pool.endpoints());
    for (const endpoint of this.cancelBudget.keys()) if (!open.has(endpoint)) this.cancelBudget.delete(endpoint);
  }

  private relayStream(
    up: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>,
    down: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  ): void {
    up.on('data', (m) => {
      if (!down.write(m)) {
        up.pause();
        down.once('drain', () => up.resume());
      }
    });
    up.on('error', () => {}); // the outcome arrives as 'status'
    up.on('status', (st: StatusObject) => {
      if (st.code === status.OK) down.end(st.metadata);
      else down.emit('error', toError(st));
    });
  }

  private outgoing(incoming: Metadata): Metadata {
    // A clone keeps every value of a repeated key (getMap() would keep only the first).
    const md = incoming.clone();
    for (const k of Object.keys(md.getMap())) if (HOP_BY_HOP.has(k) || k.startsWith(':')) md.remove(k);
    md.set(MD_FOLLOW, '1');
    md.set(MD_HOPS, HOPS_FORWARDED);
    return md;
  }

  /** Closes the channels to peers. */
  close(): void {
    this.pool.close();
  }
}

function pipeRequests(
  down: grpc.ServerReadableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  up: grpc.ClientWritableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>,
): void {
  down.on('data', (m) => {
    if (!up.write(m)) {
      down.pause();
      up.once('drain', () => down.resume());
    }
  });
  down.on('end', () => up.end());
}

function toError(st: StatusObject): ServerErrorResponse {
  return { name: 'Forwarded', message: st.details, code: st.code, details: st.details, metadata: st.metadata };
}
