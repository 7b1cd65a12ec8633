import { describe, expect, it } from 'vitest';
import { adviseSpread, leastLoadedAccounted, type PeerEntry, type PolicyConfig, type SelfState } from '../../../src/policy';
import { encodeAdvice, MAX_ADVICE_ENTRIES, parseAdvice } from '../../../src/wire';

const SERVICE = 'bank.Banking';
const NOW = 50_000;
const cfg: PolicyConfig = { threshold: 0.5, margin: 0.2, maxHops: 2, staleAfterPeriods: 2 };

function peer(nodeId: string, occupancy: number, over: Partial<PeerEntry> = {}): PeerEntry {
  return {
    nodeId,
    endpoint: `127.0.0.${nodeId.slice(1)}:7000`,
    status: 'ONLINE',
    occupancy,
    maxQueue: 32,
    extra: 0,
    capacity: 8,
    services: new Set([SERVICE]),
    receivedAt: NOW,
    periodMs: 500,
    ...over,
  };
}

function self(load: number, over: Partial<SelfState> = {}): SelfState {
  return { nodeId: 'n1', load, running: 0, queued: 0, capacity: 8, maxQueue: 32, hosts: () => true, ...over };
}

const spread = (s: SelfState, peers: PeerEntry[]) =>
  Object.fromEntries(adviseSpread(s, '127.0.0.1:7000', peers, SERVICE, NOW, cfg, leastLoadedAccounted).map((a) => [a.nodeId, a.share]));

describe('adviseSpread', () => {
  it('gives nodes of equal load and capacity equal shares', () => {
    const a = spread(self(0.8), [peer('n2', 0.8), peer('n3', 0.8)]);
    expect(a.n1).toBeCloseTo(1 / 3);
    expect(a.n2).toBeCloseTo(1 / 3);
    expect(a.n3).toBeCloseTo(1 / 3);
  });

  it('gives a busier node a smaller share, and the shares add up to 1', () => {
    const a = spread(self(1.25), [peer('n2', 0.5), peer('n3', 0.25)]);
    expect(a.n1).toBeLessThan(a.n2);
    expect(a.n2).toBeLessThan(a.n3);
    expect(a.n1 + a.n2 + a.n3).toBeCloseTo(1);
  });

  it('weighs room by capacity', () => {
    const a = spread(self(0.5), [peer('n2', 0.5, { capacity: 24 })]);
    expect(a.n2).toBeCloseTo(0.75);
  });

  it('counts the redirects sent to a peer since its report', () => {
    const a = spread(self(0.5), [peer('n2', 0.5, { extra: 0.5 }), peer('n3', 0.5)]);
    expect(a.n2).toBeLessThan(a.n3);
  });

  it('names only peers that may take calls of the service, and not itself while draining', () => {
    const a = spread(self(0.1, { status: 'DRAINING' }), [
      peer('n2', 0.5),
      peer('n3', 0, { status: 'UNHEALTHY' }),
      peer('n4', 0, { services: new Set(['other.S']) }),
      peer('n5', 0, { receivedAt: NOW - 5_000 }),
    ]);
    expect(a).toEqual({ n2: 1 });
  });

  it('does not name itself for a service it does not host: the client would come back for another redirect', () => {
    const a = spread(self(0, { hosts: (s) => s !== SERVICE }), [peer('n2', 0.5), peer('n3', 0.5)]);
    expect(a).toEqual({ n2: 0.5, n3: 0.5 });
  });

  it(`names at most ${MAX_ADVICE_ENTRIES} nodes, those with the most room`, () => {
    const peers = Array.from({ length: 12 }, (_, i) => peer(`n${i + 2}`, i / 12));
    const a = adviseSpread(self(0.99), '127.0.0.1:7000', peers, SERVICE, NOW, cfg, leastLoadedAccounted);
    expect(a).toHaveLength(MAX_ADVICE_ENTRIES);
    expect(a.map((x) => x.nodeId)).not.toContain('n1');
    expect(a.map((x) => x.nodeId)).not.toContain('n13');
  });
});

describe('the advice on the wire', () => {
  it('round-trips through its header value', () => {
    const value = encodeAdvice({ ttlMs: 10_000, shares: [{ endpoint: '127.0.0.1:7001', share: 0.5 }, { endpoint: '[::1]:7002', share: 0.5 }] });
    expect(value).toBe('ttl=10000; 127.0.0.1:7001=50, [::1]:7002=50');
    expect(parseAdvice(value)).toEqual({ ttlMs: 10_000, shares: [{ endpoint: '127.0.0.1:7001', share: 0.5 }, { endpoint: '[::1]:7002', share: 0.5 }] });
  });

  it('normalizes shares that do not add up to 100', () => {
    expect(parseAdvice('ttl=5; a.b:1=30, c.d:2=30')?.shares.map((s) => s.share)).toEqual([0.5, 0.5]);
  });

  it.each([
    ['no ttl', '127.0.0.1:1=100'],
    ['a share over 100', 'ttl=5; 127.0.0.1:1=101'],
    ['a share that is not a number', 'ttl=5; 127.0.0.1:1=x'],
    ['an endpoint that is not host:port', 'ttl=5; nowhere=100'],
    ['nothing to share', 'ttl=5; 127.0.0.1:1=0'],
    ['too many entries', `ttl=5; ${Array.from({ length: MAX_ADVICE_ENTRIES + 1 }, (_, i) => `127.0.0.1:${i + 1}=1`).join(', ')}`],
    ['a value too long', `ttl=5; ${'a'.repeat(2000)}:1=100`],
    ['not a string', Buffer.from('ttl=5; 127.0.0.1:1=100')],
  ])('refuses %s', (_why, value) => {
    expect(parseAdvice(value)).toBeNull();
  });
});
