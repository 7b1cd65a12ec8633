import { Metadata } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { callArgs, followingMetadata, isMetadata, takeSession, withHops } from '../../../src/client/call-metadata';

/** Metadata of another copy of grpc-js, as far as the stub may rely on: its public methods, not its class. */
class ForeignMetadata {
  private readonly map = new Map<string, string[]>();
  get(key: string): string[] {
    return this.map.get(key) ?? [];
  }
  set(key: string, value: string): void {
    this.map.set(key, [value]);
  }
  toJSON(): Record<string, string[]> {
    return Object.fromEntries(this.map);
  }
}

describe('outgoing metadata', () => {
  it('is a marked copy: the caller’s object is never written into', () => {
    const mine = new Metadata();
    mine.set('x-app', 'a');
    const out = followingMetadata(mine, 'n1.token123');
    expect(out.toJSON()).toEqual({ 'x-app': ['a'], 'peerbroker-follow': ['1'], 'peerbroker-session': ['n1.token123'] });
    expect(mine.toJSON()).toEqual({ 'x-app': ['a'] });
    expect(withHops(out, 2).get('peerbroker-hops')).toEqual(['2']);
    expect(out.get('peerbroker-hops')).toEqual([]);
  });

  it('copies the entries of another copy’s Metadata into this copy’s', () => {
    const foreign = new ForeignMetadata();
    foreign.set('x-tenant', 't7');
    expect(isMetadata(foreign)).toBe(true);
    const out = followingMetadata(foreign, '');
    expect(out).toBeInstanceOf(Metadata);
    expect(out.toJSON()).toEqual({ 'x-tenant': ['t7'], 'peerbroker-follow': ['1'] });
  });

  it('starts the session from response headers at the node that answered, and ends it', () => {
    const session: { token: string; endpoint?: string } = { token: '' };
    const headers = new Metadata();
    headers.set('peerbroker-session', 'n1.abc');
    takeSession(session, headers, '127.0.0.1:7001');
    expect(session).toEqual({ token: 'n1.abc', endpoint: '127.0.0.1:7001' });
    headers.set('peerbroker-session', '');
    takeSession(session, headers, '127.0.0.1:7001');
    expect(session).toEqual({ token: '', endpoint: undefined });
  });
});

describe('method arguments', () => {
  it('tells metadata of any copy, options and callback apart by shape', () => {
    const foreign = new ForeignMetadata();
    const cb = () => {};
    const options = { deadline: 5 };
    expect(callArgs([foreign, options, cb])).toEqual({ metadata: foreign, options, callback: cb });
    expect(callArgs([options, cb])).toEqual({ metadata: undefined, options, callback: cb });
    expect(callArgs([cb])).toEqual({ metadata: undefined, options: {}, callback: cb });
  });
});
