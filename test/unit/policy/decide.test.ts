import { status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PeerView } from '../../../src/cluster/peer-view';
import {
  decide,
  isEligible,
  LOCAL,
  leastLoaded,
  leastLoadedAccounted,
  peerChoiceByName,
  peerChoiceNames,
  redirectDetail,
  twoChoices,
  type CallInfo,
  type Decision,
  type PeerChoice,
  type PeerEntry,
  type PolicyConfig,
  type SelfState,
} from '../../../src/policy';
import { expectRedirect, expectReject, NOW, peer, self, SERVICE } from './policy-fixtures';

const cfg: PolicyConfig = { threshold: 0.5, margin: 0.2, maxHops: 2, staleAfterPeriods: 2 };

/** This node with every slot busy and the queue full. */
function fullSelf(): SelfState {
  return self(1, { running: 10, queued: 40 });
}

function call(over: Partial<CallInfo> = {}): CallInfo {
  return { path: `/${SERVICE}/M`, service: SERVICE, hops: 0, follows: true, advised: false, session: '', sessionOwner: '', ...over };
}

function run(s: SelfState, peers: PeerEntry[], c: CallInfo = call(), choice: PeerChoice = leastLoaded): Decision {
  return decide(c, s, peers, cfg, choice, NOW);
}

const choices: PeerChoice[] = [leastLoaded, leastLoadedAccounted, twoChoices(() => 0.5)];

describe('decide', () => {
  describe('a service this node does not host', () => {
    it('is rejected with UNIMPLEMENTED and a message naming the service when no online node hosts it', () => {
      const d = run(self(0.1), [peer('n2', 0)], call({ service: 'bank.Securities' }));
      const r = expectReject(d, status.UNIMPLEMENTED);
      expect(r.message).toContain("no online node hosts service 'bank.Securities'");
    });

    it('is rejected naming the service, this node and the host when the client does not follow redirects', () => {
      const host = peer('n2', 0, { services: new Set(['bank.Securities']) });
      const r = expectReject(run(self(0.1), [host], call({ service: 'bank.Securities', follows: false })), status.UNIMPLEMENTED);
      expect(r.message).toContain("'bank.Securities'");
      expect(r.message).toContain("'n1'");
      expect(r.message).toContain('n2');
    });

    it('is rejected even for a client that does not follow redirects and at the hop limit', () => {
      expectReject(run(self(0.1), [], call({ service: 'x.Y', follows: false })), status.UNIMPLEMENTED);
      expectReject(run(self(0.1), [], call({ service: 'x.Y', hops: 5 })), status.UNIMPLEMENTED);
    });
  });

  describe('a client that does not follow redirects', () => {
    it('always runs here, even at load 1.0 with an idle peer', () => {
      const d = run(self(1, { running: 10, queued: 5 }), [peer('n2', 0)], call({ follows: false }));
      expect(d).toBe(LOCAL);
    });

    it('is rejected with RESOURCE_EXHAUSTED and no redirect when this node is full', () => {
      const d = run(fullSelf(), [peer('n2', 0)], call({ follows: false }));
      const r = expectReject(d, status.RESOURCE_EXHAUSTED);
      expect(r.message).toContain("'n1'");
      expect(r.message).toContain('10 running');
      expect(r.message).toContain('40 queued');
      expect(d).not.toHaveProperty('peer');
    });
  });

  describe('the hop limit', () => {
    it('runs a call that followed maxHops redirects here, even when loaded and a peer is idle', () => {
      expect(run(self(0.9), [peer('n2', 0)], call({ hops: 2 }))).toBe(LOCAL);
    });

    it('runs a call beyond the hop limit here too', () => {
      expect(run(self(1), [peer('n2', 0)], call({ hops: 7 }))).toBe(LOCAL);
    });

    it('runs a call that already followed a redirect where it lands while this node has queue room, even with an idle peer', () => {
      // 9 of 10 busy: a free slot here, so the hop already paid for is not repeated.
      expect(run(self(0.9), [peer('n2', 0)], call({ hops: 1 }))).toBe(LOCAL);
      // 10 running and 30 waiting: it waits here rather than pay a second hop.
      expect(run(self(4, { running: 10, queued: 30, maxQueue: 40 }), [peer('n2', 0)], call({ hops: 1 }))).toBe(LOCAL);
      // Full (no queue room left): it moves to a peer with room rather than be refused.
      expectRedirect(run(self(5, { running: 10, queued: 40, maxQueue: 40 }), [peer('n2', 0)], call({ hops: 1 })));
    });

    it('moves the call of a client that spreads by advice only when it would queue here past the margin', () => {
      expect(run(self(0.9), [peer('n2', 0)], call({ advised: true }))).toBe(LOCAL);
      expect(run(self(1.2, { running: 10, queued: 2 }), [peer('n2', 0)], call({ advised: true }))).toBe(LOCAL);
      expectRedirect(run(self(1.3, { running: 10, queued: 3 }), [peer('n2', 0)], call({ advised: true })));
    });

    it('moves an advised or redirected call off a full node with no queue (maxQueue 0) to a peer with room, instead of refusing it here', () => {
      // Every slot busy and no queue at all: load 1, within 1 + margin, yet nothing more fits here.
      const noQueue = self(1, { running: 10, queued: 0, maxQueue: 0 });
      for (const c of [call({ advised: true }), call({ hops: 1 })]) {
        const d = expectRedirect(run(noQueue, [peer('n2', 0.5)], c));
        expect(d.peer.nodeId).toBe('n2');
        expect(d.reason).toBe('load');
      }
      // With no peer that has room, it is refused as before.
      expectReject(run(noQueue, [peer('n2', 5)], call({ advised: true })), status.RESOURCE_EXHAUSTED);
    });

    it('never redirects a call at the hop limit: a full node rejects it instead', () => {
      expectReject(run(fullSelf(), [peer('n2', 0)], call({ hops: 2 })), status.RESOURCE_EXHAUSTED);
    });
  });

  describe('the threshold and the margin', () => {
    it('runs a call here when the load is below the threshold, even with an idle peer', () => {
      expect(run(self(0.49), [peer('n2', 0)])).toBe(LOCAL);
    });

    it('considers a redirect once the load reaches the threshold', () => {
      expectRedirect(run(self(0.5), [peer('n2', 0.25)]));
    });

    it('redirects to the least-loaded peer that is lower by at least the margin, with reason load', () => {
      const peers = [peer('n2', 0.3), peer('n3', 0.1), peer('n4', 0.5)];
      const d = expectRedirect(run(self(0.8), peers));
      expect(d.peer.nodeId).toBe('n3');
      expect(d.reason).toBe('load');
    });

    it('writes a detail text that names both the own load and the peer load', () => {
      const d = expectRedirect(run(self(0.81), [peer('n2', 0.3)]));
      const detail = redirectDetail(d, '/bank.Banking/GetBalance', SERVICE, 'n1', cfg.threshold);
      expect(detail).toBe('load 0.81 > 0.50, peer at 0.30');
    });

    it('runs a call here when no peer is lower by the margin', () => {
      expect(run(self(0.8), [peer('n2', 0.61), peer('n3', 0.7), peer('n4', 0.95)])).toBe(LOCAL);
    });

    it('runs a call here when there are no peers at all', () => {
      expect(run(self(0.95), [])).toBe(LOCAL);
    });

    // A peer exactly `margin` lower qualifies.
    // Loads are fractions of the capacity, so exact decimal steps such as 7/10 vs 5/10 are common.
    it('redirects to a peer that is exactly the margin lower (7 of 10 busy here, 5 of 10 there)', () => {
      const d = run(self(7 / 10, { running: 7 }), [peer('n2', 5 / 10)]);
      expectRedirect(d);
    });

    it('redirects to a peer that is exactly the margin lower when the loads are binary fractions', () => {
      // 0.75 - 0.25 = 0.5 exactly in binary floating point.
      const c: PolicyConfig = { ...cfg, margin: 0.25 };
      const d = decide(call(), self(0.75), [peer('n2', 0.5)], c, leastLoaded, NOW);
      expectRedirect(d);
    });

    it('does not redirect to a peer just short of the margin', () => {
      const c: PolicyConfig = { ...cfg, margin: 0.25 };
      expect(decide(call(), self(0.75), [peer('n2', 0.5 + 1 / 1024)], c, leastLoaded, NOW)).toBe(LOCAL);
    });

    it('returns the shared LOCAL object for every run-here outcome, since the call gate compares by identity', () => {
      const locals = [
        run(self(0.1), [peer('n2', 0)]),
        run(self(0.9), [peer('n2', 0)], call({ follows: false })),
        run(self(0.9), [peer('n2', 0)], call({ hops: 2 })),
        run(self(0.9), [peer('n2', 0.8)]),
      ];
      for (const d of locals) expect(d).toBe(LOCAL);
      expect(Object.isFrozen(LOCAL)).toBe(true);
    });

    it('leaves the peer list as it was', () => {
      const peers = [peer('n2', 0.3), peer('n3', 0.1)];
      const before = [...peers];
      run(self(0.9), peers);
      expect(peers).toEqual(before);
    });
  });

  describe.each(choices.map((c) => [c.name, c] as const))('peers that are never chosen (%s)', (_name, choice) => {
    const cases: Array<[string, PeerEntry]> = [
      ['OFFLINE', peer('bad', 0, { status: 'OFFLINE' })],
      ['DRAINING', peer('bad', 0, { status: 'DRAINING' })],
      ['UNHEALTHY', peer('bad', 0, { status: 'UNHEALTHY' })],
      ['LEAVING', peer('bad', 0, { status: 'LEAVING' })],
      ['stale (last report over staleAfterPeriods periods old)', peer('bad', 0, { receivedAt: NOW - 1001 })],
      ['not hosting the service', peer('bad', 0, { services: new Set(['bank.Securities']) })],
    ];

    it.each(cases)('a peer that is %s is not chosen when loaded; the call runs here', (_what, bad) => {
      expect(run(self(0.9), [bad], call(), choice)).toBe(LOCAL);
    });

    it.each(cases)('a peer that is %s is passed over for a busier eligible one', (_what, bad) => {
      const good = peer('good', 0.4);
      const d = expectRedirect(run(self(0.9), [bad, good], call(), choice));
      expect(d.peer.nodeId).toBe('good');
    });

    it.each(cases)('a peer that is %s is not chosen when full; the call is rejected', (_what, bad) => {
      expectReject(run(fullSelf(), [bad], call(), choice), status.RESOURCE_EXHAUSTED);
    });
  });

  describe('a full node (every slot busy and the queue full)', () => {
    it('redirects to a peer with room even when it is not lower by the margin', () => {
      const d = expectRedirect(run(fullSelf(), [peer('n2', 0.95)]));
      expect(d.peer.nodeId).toBe('n2');
      expect(d.reason).toBe('load');
    });

    it('picks the least-loaded peer with room', () => {
      const d = expectRedirect(run(fullSelf(), [peer('n2', 0.95), peer('n3', 0.9), peer('n4', 1)]));
      expect(d.peer.nodeId).toBe('n3');
    });

    it('sends the call to a peer whose slots are all busy but whose queue has room', () => {
      const d = expectRedirect(run(fullSelf(), [peer('n2', 1), peer('n3', 1.5)]));
      expect(d.peer.nodeId).toBe('n2');
    });

    it('rejects with RESOURCE_EXHAUSTED and no location when every peer is full too (slots and queue)', () => {
      const d = run(fullSelf(), [peer('n2', 5), peer('n3', 5)]);
      const r = expectReject(d, status.RESOURCE_EXHAUSTED);
      expect(r.message).toContain('no peer can take the call');
    });

    it('rejects with RESOURCE_EXHAUSTED when there are no peers', () => {
      expectReject(run(fullSelf(), []), status.RESOURCE_EXHAUSTED);
    });

    it('compares loads past 1: a node with a queue sends the call to a peer with a shorter one', () => {
      // 10 running + 5 waiting here (1.5); n2 has 1 waiting (1.1): lower by more than the margin.
      expectRedirect(run(self(1.5, { running: 10, queued: 5 }), [peer('n2', 1.1)]));
      // n3 has 4 waiting (1.4): with the call, 1.5 there against 1.6 here, not the margin lower.
      expect(run(self(1.5, { running: 10, queued: 5 }), [peer('n3', 1.4)])).toBe(LOCAL);
    });

    it('is not full while the queue still has room, so a busy node without a better peer runs the call', () => {
      expect(run(self(1, { running: 10, queued: 39 }), [peer('n2', 0.95)])).toBe(LOCAL);
    });

    it('rejects even below the threshold when full (a load meter can lag the slot count)', () => {
      // Full is a fact about slots and queue; the reported load does not make room.
      expectReject(run(self(0.2, { running: 10, queued: 40 }), []), status.RESOURCE_EXHAUSTED);
    });
  });
});

describe('isEligible', () => {
  it('accepts an online peer that hosts the service and reported within staleAfterPeriods periods', () => {
    expect(isEligible(peer('n2', 0.3), SERVICE, NOW, cfg)).toBe(true);
  });

  it('accepts a report exactly staleAfterPeriods periods old and rejects one a millisecond older', () => {
    expect(isEligible(peer('n2', 0.3, { receivedAt: NOW - 1000 }), SERVICE, NOW, cfg)).toBe(true);
    expect(isEligible(peer('n2', 0.3, { receivedAt: NOW - 1001 }), SERVICE, NOW, cfg)).toBe(false);
  });

  it("judges staleness by the peer's own period, not this node's", () => {
    const slow = peer('n2', 0.3, { periodMs: 2000, receivedAt: NOW - 3000 });
    expect(isEligible(slow, SERVICE, NOW, cfg)).toBe(true);
  });

  it.each(['OFFLINE', 'DRAINING', 'UNHEALTHY', 'LEAVING'] as const)('rejects a peer whose status is %s', (s) => {
    expect(isEligible(peer('n2', 0, { status: s }), SERVICE, NOW, cfg)).toBe(false);
  });

  it('rejects a peer that does not host the service', () => {
    expect(isEligible(peer('n2', 0), 'bank.Securities', NOW, cfg)).toBe(false);
  });
});

describe('peer choice', () => {
  it('leastLoaded compares reported load only and ignores local accounting', () => {
    const a = peer('a', 0.2, { extra: 0.5 });
    const b = peer('b', 0.3);
    expect(leastLoaded.select([a, b])).toBe(a);
    expect(leastLoaded.loadOf(a)).toBe(0.2);
  });

  it('leastLoadedAccounted compares reported load plus the redirects sent since the report', () => {
    const a = peer('a', 0.2, { extra: 0.5 });
    const b = peer('b', 0.3);
    expect(leastLoadedAccounted.select([a, b])).toBe(b);
    expect(leastLoadedAccounted.loadOf(a)).toBeCloseTo(0.7);
  });

  it('keeps the first of equally loaded peers', () => {
    const a = peer('a', 0.2);
    const b = peer('b', 0.2);
    expect(leastLoaded.select([a, b])).toBe(a);
    expect(leastLoadedAccounted.select([a, b])).toBe(a);
  });

  describe('ten redirects sent before the next report arrives', () => {
    const view = new PeerView({ offlineAfterPeriods: 3, forgetAfterMs: 60_000 });

    function redirectTen(choice: PeerChoice): Map<string, number> {
      const peers = [peer('a', 0.1), peer('b', 0.15)];
      const counts = new Map<string, number>([
        ['a', 0],
        ['b', 0],
      ]);
      for (let i = 0; i < 10; i++) {
        const d = run(self(0.9), peers, call(), choice);
        if (d.kind !== 'redirect') throw new Error(`redirect ${i} was ${d.kind}`);
        // What the call gate does for every redirect it sends: +1/capacity on that peer.
        view.account(d.peer, NOW, Infinity);
        counts.set(d.peer.nodeId, counts.get(d.peer.nodeId)! + 1);
      }
      return counts;
    }

    it('all go to the same peer with leastLoaded (herding)', () => {
      const counts = redirectTen(leastLoaded);
      expect(counts.get('a')).toBe(10);
      expect(counts.get('b')).toBe(0);
    });

    it('are spread over both peers with leastLoadedAccounted', () => {
      const counts = redirectTen(leastLoadedAccounted);
      expect(counts.get('a')).toBeGreaterThan(0);
      expect(counts.get('b')).toBeGreaterThan(0);
      expect(counts.get('a')! + counts.get('b')!).toBe(10);
      // a starts 0.05 lower, so with +0.1 per redirect they alternate: 5 each.
      expect(counts.get('a')).toBe(5);
    });

    it('stop going to a peer once its accounted load with the call is no longer lower by the margin', () => {
      // Eighths are exact in binary, so the comparison is not at the mercy of rounding.
      const peers = [peer('a', 0.25, { capacity: 8 })];
      const c: PolicyConfig = { ...cfg, margin: 0.25 };
      let redirects = 0;
      for (let i = 0; i < 10; i++) {
        const d = decide(call(), self(0.875, { capacity: 8, running: 7 }), peers, c, leastLoadedAccounted, NOW);
        if (d.kind !== 'redirect') break;
        view.account(d.peer, NOW, Infinity);
        redirects++;
      }
      // With the call: 1 here; there 0.375, 0.5, 0.625 and 0.75 are ≤ 1 - 0.25; 0.875 is not.
      expect(redirects).toBe(4);
    });
  });

  describe('twoChoices', () => {
    function sequence(values: number[]): () => number {
      let i = 0;
      return () => values[i++ % values.length];
    }

    it('returns the only candidate without drawing a random number', () => {
      let draws = 0;
      const rule = twoChoices(() => {
        draws++;
        return 0.3;
      });
      const only = peer('a', 0.9);
      expect(rule.select([only])).toBe(only);
      expect(draws).toBe(0);
    });

    it('picks the less loaded of the two sampled candidates', () => {
      const c = [peer('a', 0.4), peer('b', 0.1), peer('c', 0.3), peer('d', 0.2)];
      // First draw samples index 3 (d, 0.2), second index 2 (c, 0.3): d wins, although b is lowest.
      expect(twoChoices(sequence([0.8, 0.7])).select(c)).toBe(c[3]);
      // Index 0 (a, 0.4) and index 1 of the rest, which skips index 0: b (0.1).
      expect(twoChoices(sequence([0.0, 0.0])).select(c)).toBe(c[1]);
    });

    it('compares accounted load', () => {
      const a = peer('a', 0.1, { extra: 0.5 });
      const b = peer('b', 0.3);
      expect(twoChoices(sequence([0, 0])).select([a, b])).toBe(b);
      expect(twoChoices().loadOf(a)).toBeCloseTo(0.6);
    });

    it('never samples the same candidate twice, so of two candidates the lower one always wins', () => {
      fc.assert(
        fc.property(
          fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
          fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
          (r1, r2) => {
            const lo = peer('lo', 0.1);
            const hi = peer('hi', 0.6);
            const rule = twoChoices(sequence([r1, r2]));
            return rule.select([hi, lo]) === lo && twoChoices(sequence([r1, r2])).select([lo, hi]) === lo;
          },
        ),
        { numRuns: 2000 },
      );
    });

    it('never picks the most loaded of several candidates', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 2, max: 12 }),
          fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
          fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
          (n, r1, r2) => {
            const c = Array.from({ length: n }, (_, i) => peer(`p${i}`, i / n));
            const worst = c[n - 1];
            return twoChoices(sequence([r1, r2])).select(c) !== worst;
          },
        ),
        { numRuns: 2000 },
      );
    });
  });

  describe('peerChoiceByName', () => {
    it('knows least-loaded, least-loaded-accounted and two-choices', () => {
      expect(peerChoiceNames()).toEqual(
        expect.arrayContaining(['least-loaded', 'least-loaded-accounted', 'two-choices']),
      );
      for (const name of ['least-loaded', 'least-loaded-accounted', 'two-choices']) {
        expect(peerChoiceByName(name).name).toBe(name);
      }
    });

    it('throws on an unknown name with a message that quotes it and lists the known names', () => {
      expect(() => peerChoiceByName('round-robin')).toThrow(/'round-robin'/);
      try {
        peerChoiceByName('round-robin');
      } catch (err) {
        const message = (err as Error).message;
        for (const known of peerChoiceNames()) expect(message).toContain(known);
      }
    });
  });
});
