import type { status } from '@grpc/grpc-js';
import { expect } from 'vitest';
import type { Decision, PeerEntry, SelfState } from '../../../src/policy';

// Plain objects for unit tests of the decision.

/** The service the fixtures host unless told otherwise. */
export const SERVICE = 'bank.Banking';
/** The time of every decision, local monotonic ms; peers reported at that moment. */
export const NOW = 100_000;

let nextPort = 7001;

/** An online peer at `load` (capacity 10, 40 may wait, period 500 ms) hosting SERVICE, reported at NOW; a load past 1 is a queue. */
export function peer(nodeId: string, load: number, over: Partial<PeerEntry> = {}): PeerEntry {
  return {
    nodeId,
    endpoint: `127.0.0.1:${nextPort++}`,
    status: 'ONLINE',
    occupancy: load,
    maxQueue: 40,
    extra: 0,
    capacity: 10,
    services: new Set([SERVICE]),
    receivedAt: NOW,
    periodMs: 500,
    ...over,
  };
}

/** This node (n1) at `load`, with capacity 10 and room for 40 waiting calls, hosting SERVICE, unless told otherwise. */
export function self(load: number, over: Partial<SelfState> = {}): SelfState {
  return {
    nodeId: 'n1',
    load,
    running: Math.min(10, Math.round(load * 10)),
    queued: 0,
    capacity: 10,
    maxQueue: 40,
    hosts: (s) => s === SERVICE,
    ...over,
  };
}

/** Asserts `d` is a redirect and returns it. */
export function expectRedirect(d: Decision): Extract<Decision, { kind: 'redirect' }> {
  expect(d.kind).toBe('redirect');
  return d as Extract<Decision, { kind: 'redirect' }>;
}

/** Asserts `d` is a reject with `code` and returns it. */
export function expectReject(d: Decision, code: status): Extract<Decision, { kind: 'reject' }> {
  expect(d.kind).toBe('reject');
  const r = d as Extract<Decision, { kind: 'reject' }>;
  expect(r.code).toBe(code);
  return r;
}
