import { Metadata, status, type StatusObject } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { failoverTarget, isRedirect, nextStep, type AttemptFacts } from '../../../src/client/outcome';

const facts = (over: Partial<AttemptFacts> = {}): AttemptFacts => ({
  accepted: false,
  replayable: true,
  neverSent: false,
  idempotent: false,
  hops: 0,
  maxRedirects: 3,
  endpoint: '10.0.0.1:7001',
  ...over,
});

function redirect(location = '10.0.0.2:7001'): StatusObject {
  const metadata = new Metadata();
  metadata.set('peerbroker-location', location);
  metadata.set('peerbroker-location-node', 'n2');
  return { code: status.RESOURCE_EXHAUSTED, details: 'peerbroker: redirected to n2', metadata };
}
const unavailable: StatusObject = { code: status.UNAVAILABLE, details: 'Connection dropped', metadata: new Metadata() };

describe('the step after an attempt', () => {
  it('follows a redirect to the named location while redirects are left', () => {
    expect(nextStep(redirect(), facts({ hops: 2 }))).toEqual({ kind: 'redirect', location: '10.0.0.2:7001', node: 'n2' });
  });

  it('gives up after maxRedirects with RESOURCE_EXHAUSTED naming the limit', () => {
    const step = nextStep(redirect(), facts({ hops: 3 }));
    expect(step.kind).toBe('finish');
    if (step.kind === 'finish') {
      expect(step.status.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(step.status.details).toBe('peerbroker: gave up after 3 redirects; last: peerbroker: redirected to n2');
    }
  });

  it('never follows a redirect once the node accepted the call, nor a RESOURCE_EXHAUSTED without a location', () => {
    expect(nextStep(redirect(), facts({ accepted: true })).kind).toBe('finish');
    const full: StatusObject = { code: status.RESOURCE_EXHAUSTED, details: 'queue full', metadata: new Metadata() };
    expect(isRedirect(full)).toBe(false);
    expect(nextStep(full, facts())).toEqual({ kind: 'finish', status: full });
  });

  it('moves a call that never left to another member, whatever the method', () => {
    expect(nextStep(unavailable, facts({ neverSent: true }))).toEqual({ kind: 'failover', otherwise: unavailable });
  });

  it('moves an idempotent call that may have run, while its request is still held', () => {
    expect(nextStep(unavailable, facts({ idempotent: true })).kind).toBe('failover');
    expect(nextStep(unavailable, facts({ idempotent: true, replayable: false })).kind).toBe('finish');
  });

  it('fails any other lost call saying it may or may not have run, naming the endpoint', () => {
    const step = nextStep(unavailable, facts());
    expect(step.kind).toBe('finish');
    if (step.kind === 'finish') {
      expect(step.status.code).toBe(status.UNAVAILABLE);
      expect(step.status.details).toMatch(/^peerbroker: lost the connection to 10\.0\.0\.1:7001 during the call; it may or may not have run .*Connection dropped$/);
    }
  });

  it('passes every other status through as it is', () => {
    const st: StatusObject = { code: status.NOT_FOUND, details: 'no account', metadata: new Metadata() };
    expect(nextStep(st, facts({ neverSent: true, idempotent: true }))).toEqual({ kind: 'finish', status: st });
  });
});

describe('the failover target', () => {
  const members = ['a:1', 'b:1', 'c:1'];

  it('is a member not tried yet, spread over the members across calls', () => {
    const picks = new Set<string>();
    for (let i = 0; i < 6; i++) picks.add(failoverTarget(members, new Set(['a:1']), 2)!);
    expect(picks).toEqual(new Set(['b:1', 'c:1']));
  });

  it('is none once every member was tried or maxFailovers are used', () => {
    expect(failoverTarget(members, new Set(members), 5)).toBeUndefined();
    expect(failoverTarget(members, new Set(['a:1', 'b:1']), 1)).toBeUndefined();
  });
});
