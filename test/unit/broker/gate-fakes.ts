import { EventEmitter } from 'node:events';
import { Metadata, type MethodDefinition, type sendUnaryData, type ServiceError, type UntypedHandleCall } from '@grpc/grpc-js';
import { vi } from 'vitest';
import { AdviceCache } from '../../../src/broker/advice-cache';
import { Admission } from '../../../src/broker/admission';
import { CallGate } from '../../../src/broker/call-gate';
import type { Forwarder } from '../../../src/broker/forwarder';
import { SessionTable } from '../../../src/broker/session-table';
import { PeerView } from '../../../src/cluster/peer-view';
import { CompiledRules, leastLoaded, type PolicyConfig, type SelfState, type SessionRule } from '../../../src/policy';

/**
 * Fakes of grpc-js server calls for unit tests of the call gate: the events and methods
 * the gate uses, behaving as grpc-js 1.x does (server-call.ts, server.ts).
 */
export class FakeCall extends EventEmitter {
  cancelled = false;
  /** Response headers the gate sent, in order. */
  readonly headers: Metadata[] = [];
  constructor(
    readonly metadata: Metadata,
    readonly request: unknown = {},
  ) {
    super();
  }
  sendMetadata(md: Metadata): void {
    this.headers.push(md);
  }
  /** The client cancelled or the deadline passed: grpc-js says 'cancelled' (streams are also destroyed). */
  cancel(): void {
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
  }
  /** The `peerbroker-session` response header, if one was sent. */
  sessionHeader(): string | undefined {
    for (const md of this.headers) {
      const v = md.get('peerbroker-session');
      if (v.length > 0) return String(v[0]);
    }
    return undefined;
  }
}

/** A server-streaming or bidi call: ends with end(); grpc-js ends it itself on an emitted error. */
export class FakeStreamCall extends FakeCall {
  ended = false;
  destroyed = false;
  constructor(metadata: Metadata, request?: unknown) {
    super(metadata, request);
    this.on('error', () => this.end());
  }
  end(): void {
    this.ended = true;
    if (this.destroyed) return; // Node: no 'finish' on a destroyed stream
    this.emit('finish');
  }
  override cancel(): void {
    super.cancel();
    this.destroyed = true;
    this.emit('close');
  }
}

/** A method definition as grpc-js gives it; only the fields the gate reads. */
export function method(path: string, kind: 'unary' | 'server' | 'client' | 'bidi' = 'unary'): MethodDefinition<unknown, unknown> {
  return {
    path,
    requestStream: kind === 'client' || kind === 'bidi',
    responseStream: kind === 'server' || kind === 'bidi',
  } as MethodDefinition<unknown, unknown>;
}

/** Metadata of a call: `follow` announces following redirects; `session` carries a token. */
export function md(opts: { follow?: boolean; session?: string } = {}): Metadata {
  const m = new Metadata();
  if (opts.follow) m.set('peerbroker-follow', '1');
  if (opts.session !== undefined) m.set('peerbroker-session', opts.session);
  return m;
}

/** The bank's session rule: BeginTransaction enters, Commit exits, the rest of Banking is within. */
export const BANK_SESSIONS: SessionRule[] = [
  { enter: 'bank.Banking/BeginTransaction', within: 'bank.Banking/*', exit: 'bank.Banking/Commit' },
];

/** Options of `gateFor()`. */
export interface GateSetup {
  capacity?: number;
  maxQueue?: number;
  sessions?: SessionRule[];
  maxSessions?: number;
  cancelGraceMs?: number;
}

/** A call gate of node 'n1', alone (no peers), with a real admission and session table. */
export function gateFor(o: GateSetup = {}) {
  const capacity = o.capacity ?? 1;
  const maxQueue = o.maxQueue ?? 100;
  const admission = new Admission(capacity, maxQueue, 0.5, () => {});
  const sessions = new SessionTable('n1', o.maxSessions);
  const self: SelfState = { nodeId: 'n1', load: 0, running: 0, queued: 0, capacity, maxQueue, hosts: () => true };
  self.hasSession = (t) => sessions.touch(t, Date.now());
  const peers = new PeerView({ offlineAfterPeriods: 3, forgetAfterMs: 60_000 });
  const config: PolicyConfig = { threshold: 0.5, margin: 0.2, maxHops: 2, staleAfterPeriods: 2, rules: new CompiledRules(o.sessions ?? []) };
  const onOverrun = vi.fn();
  const onOverload = vi.fn();
  const gate = new CallGate({
    nodeId: 'n1',
    self,
    admission,
    peers,
    config,
    choice: leastLoaded,
    sessions,
    forwarder: { forward: vi.fn() } as unknown as Forwarder,
    advice: new AdviceCache(self, () => '127.0.0.1:1', peers, config, () => leastLoaded, () => 500),
    periodMs: () => 500,
    cancelGraceMs: o.cancelGraceMs,
    onOverrun,
    onOverload,
  });
  return { gate, admission, sessions, onOverrun, onOverload };
}

/** A unary handler that keeps its callbacks, to answer when the test says. */
export function heldHandler() {
  const pending: Array<sendUnaryData<unknown>> = [];
  const calls: FakeCall[] = [];
  const handler = (call: FakeCall, cb: sendUnaryData<unknown>) => {
    calls.push(call);
    pending.push(cb);
  };
  return { handler: handler as unknown as UntypedHandleCall, pending, calls };
}

/** A gate (see `gateFor`) whose GetBalance handler keeps its callbacks; `wrapped` is the gated handler. */
export function heldGetBalance(o: GateSetup = {}) {
  const g = gateFor(o);
  const held = heldHandler();
  return { ...g, held, wrapped: g.gate.wrap(method('/bank.Banking/GetBalance'), 'bank.Banking', held.handler) };
}

/** What a client got: the answers passed to grpc-js's callback, in order. */
export function answers() {
  const got: Array<{ err: Partial<ServiceError> | null; value: unknown }> = [];
  const callback: sendUnaryData<unknown> = (err, value) => got.push({ err: err as Partial<ServiceError> | null, value });
  return { got, callback };
}

/** Runs a gate-wrapped handler as grpc-js does. */
export function invoke(wrapped: UntypedHandleCall, call: FakeCall, callback?: sendUnaryData<unknown>): void {
  (wrapped as unknown as (c: FakeCall, cb?: sendUnaryData<unknown>) => void)(call, callback);
}

/** One turn of the event loop: a call given a freed slot starts then. */
export const turn = () => new Promise<void>((r) => setImmediate(r));
