import {
  Metadata,
  status,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type MethodDefinition,
  type sendUnaryData,
  type ServerErrorResponse,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedHandleCall,
} from '@grpc/grpc-js';
import type { PeerView } from '../cluster/peer-view';
import { decide, LOCAL, type CallInfo, type Decision, type PeerChoice, type PolicyConfig, type SelfState } from '../policy';
import { MD_FOLLOW, MD_HOPS, MD_LOCATION, MD_LOCATION_NODE, MD_NODE, MD_REASON } from '../wire';
import type { Admission } from './admission';

/** Counters of what the gate did, since start. */
export interface GateStats {
  run: number;
  redirected: number;
  rejected: number;
}

/**
 * Applies the decision to every call before the handler runs, and keeps the
 * in-flight count. One gate per broker; handlers are wrapped once, at addService.
 */
export class CallGate {
  readonly stats: GateStats = { run: 0, redirected: 0, rejected: 0 };
  /** Response headers of an accepted call; shared because grpc-js only reads them. */
  private readonly acceptedHeaders = new Metadata();
  private readonly call: CallInfo = { path: '', service: '', hops: 0, follows: false, session: '', sessionOwner: '' };

  constructor(
    private readonly self: SelfState,
    private readonly admission: Admission,
    private readonly peers: PeerView,
    readonly config: PolicyConfig,
    public choice: PeerChoice,
    nodeId: string,
    private readonly onRedirect: (d: Extract<Decision, { kind: 'redirect' }>) => void = () => {},
  ) {
    this.acceptedHeaders.set(MD_NODE, nodeId);
  }

  /** Wraps a user handler of `method` so the decision runs first. */
  wrap(method: MethodDefinition<unknown, unknown>, service: string, handler: UntypedHandleCall): UntypedHandleCall {
    if (!method.requestStream && !method.responseStream) {
      return this.wrapUnary(service, handler as handleUnaryCall<unknown, unknown>);
    }
    if (!method.requestStream && method.responseStream) {
      return this.wrapServerStream(service, handler as handleServerStreamingCall<unknown, unknown>);
    }
    // Client-streaming and bidi: the stub does not announce following for them yet,
    // so they run here; they are still counted as load.
    return this.wrapOther(handler);
  }

  /** The decision for a call to `service` with `md`, at this moment. */
  decideFor(service: string, md: Metadata): Decision {
    const call = this.call;
    call.service = service;
    call.follows = md.get(MD_FOLLOW)[0] === '1';
    call.hops = call.follows ? parseHops(md.get(MD_HOPS)[0], this.config.maxHops) : 0;
    this.self.load = this.admission.load();
    this.self.running = this.admission.running;
    this.self.queued = this.admission.queued;
    return decide(call, this.self, this.peers.peers, this.config, this.choice, performance.now());
  }

  private wrapUnary(service: string, handler: handleUnaryCall<unknown, unknown>): handleUnaryCall<unknown, unknown> {
    return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      const d = this.decideFor(service, call.metadata);
      if (d !== LOCAL) return callback(this.notLocal(d));
      if (this.call.follows) call.sendMetadata(this.acceptedHeaders);
      let done = false;
      const finish = () => {
        if (!done) {
          done = true;
          this.admission.release();
        }
      };
      const waiting = this.admission.admit(() => {
        this.stats.run++;
        try {
          handler(call, (err, value, trailer, flags) => {
            finish();
            callback(err, value, trailer, flags);
          });
        } catch (err) {
          finish();
          callback({ code: status.UNKNOWN, details: `handler threw: ${(err as Error).message}` });
        }
      });
      call.once('cancelled', () => (waiting && !waiting.started ? waiting.cancel() : finish()));
    };
  }

  private wrapServerStream(
    service: string,
    handler: handleServerStreamingCall<unknown, unknown>,
  ): handleServerStreamingCall<unknown, unknown> {
    return (call: ServerWritableStream<unknown, unknown>) => {
      const d = this.decideFor(service, call.metadata);
      if (d !== LOCAL) {
        call.emit('error', this.notLocal(d));
        return;
      }
      if (this.call.follows) call.sendMetadata(this.acceptedHeaders);
      this.track(call, () => {
        this.stats.run++;
        handler(call);
      });
    };
  }

  private wrapOther(handler: UntypedHandleCall): UntypedHandleCall {
    return ((call: ServerWritableStream<unknown, unknown>, ...rest: unknown[]) => {
      this.track(call, () => {
        this.stats.run++;
        (handler as (...a: unknown[]) => void)(call, ...rest);
      });
    }) as UntypedHandleCall;
  }

  // A streaming call holds its slot until it ends or is cancelled.
  private track(call: NodeJS.EventEmitter, start: () => void): void {
    let done = false;
    let started = false;
    const finish = () => {
      if (started && !done) {
        done = true;
        this.admission.release();
      }
    };
    const waiting = this.admission.admit(() => {
      started = true;
      start();
    });
    call.once('finish', finish);
    call.once('close', finish);
    call.once('cancelled', () => (waiting && !waiting.started ? waiting.cancel() : finish()));
  }

  /** The status a redirect or reject is sent as; counts it. */
  notLocal(d: Decision): ServerErrorResponse {
    if (d.kind === 'redirect') {
      this.stats.redirected++;
      this.peers.account(d.peer);
      this.onRedirect(d);
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
