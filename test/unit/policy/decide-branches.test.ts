import { status } from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
import {
  CompiledRules,
  decide,
  LOCAL,
  leastLoaded,
  redirectDetail,
  type CallInfo,
  type Decision,
  type PeerEntry,
  type PolicyConfig,
  type SelfState,
} from '../../../src/policy';
import { expectRedirect, expectReject, NOW, peer as basePeer, self as baseSelf, SERVICE } from './policy-fixtures';

// The branches of decide() before the load rule: sessions, calls relayed for plain
// clients (legacy), calls a peer forwarded, draining and unhealthy nodes, dedicated homes.

const BANKING = SERVICE;
const SECURITIES = 'bank.Securities';
const BOTH = new Set([BANKING, SECURITIES]);

const SESSIONS = [{ enter: 'bank.Banking/BeginTransaction', within: 'bank.Banking/*', exit: 'bank.Banking/Commit' }];
const rules = new CompiledRules(SESSIONS, { 'bank.Securities/*': ['n2'] });
const cfg: PolicyConfig = { threshold: 0.5, margin: 0.2, maxHops: 2, staleAfterPeriods: 2, rules };

/** An online peer hosting both services. */
const peer = (nodeId: string, load: number, over: Partial<PeerEntry> = {}) => basePeer(nodeId, load, { services: BOTH, ...over });

/** Node n1 at `load`, hosting both services, owning the live session `n1.live-session`. */
const self = (load: number, over: Partial<SelfState> = {}) =>
  baseSelf(load, { hosts: (s) => BOTH.has(s), hasSession: (t) => t === 'n1.live-session', ...over });

const full = () => self(1, { running: 10, queued: 40 });

function call(path: string, over: Partial<CallInfo> = {}): CallInfo {
  const service = path.slice(1, path.indexOf('/', 1));
  return { path, service, hops: 0, follows: true, advised: false, session: '', sessionOwner: '', ...over };
}

const deposit = (session: string, over: Partial<CallInfo> = {}) =>
  call('/bank.Banking/Deposit', { session, sessionOwner: session.slice(0, session.indexOf('.')), ...over });

function run(s: SelfState, peers: PeerEntry[], c: CallInfo, config: PolicyConfig = cfg): Decision {
  return decide(c, s, peers, config, leastLoaded, NOW);
}

describe('decide: sessions', () => {
  it('runs a call of a live session this node owns here, even when loaded with an idle peer', () => {
    expect(run(self(0.9), [peer('n2', 0)], deposit('n1.live-session'))).toBe(LOCAL);
  });

  it('refuses a call of a live session here when this node is full, naming the session, with no location', () => {
    const r = expectReject(run(full(), [peer('n2', 0)], deposit('n1.live-session')), status.RESOURCE_EXHAUSTED);
    expect(r.message).toContain("session 'n1.live-session'");
    expect(r.message).toContain('10 running, 40 queued');
    expect(r).not.toHaveProperty('peer');
  });

  it('refuses a token of this node that it does not know (never issued or expired)', () => {
    const r = expectReject(run(self(0.1), [], deposit('n1.expired-token')), status.FAILED_PRECONDITION);
    expect(r.message).toContain("session 'n1.expired-token' is unknown or expired on node 'n1'");
  });

  it('redirects a call of a session owned by an online peer there, with reason session, whatever the hops and the load', () => {
    const owner = peer('n2', 1);
    for (const c of [deposit('n2.their-session'), deposit('n2.their-session', { hops: 9 })]) {
      const d = expectRedirect(run(self(0), [peer('n3', 0), owner], c));
      expect(d.peer).toBe(owner);
      expect(d.reason).toBe('session');
    }
  });

  it('redirects to an owner that is draining or unhealthy: the session state is only there', () => {
    for (const s of ['DRAINING', 'UNHEALTHY'] as const) {
      expect(expectRedirect(run(self(0), [peer('n2', 0, { status: s })], deposit('n2.their-session'))).peer.nodeId).toBe('n2');
    }
  });

  it.each([
    ['unknown', []],
    ['off-line', [peer('n2', 0, { status: 'OFFLINE' })]],
    ['leaving', [peer('n2', 0, { status: 'LEAVING' })]],
  ])('refuses a call whose session owner is %s: the state is lost', (_what, peers) => {
    const r = expectReject(run(self(0), peers as PeerEntry[], deposit('n2.their-session')), status.FAILED_PRECONDITION);
    expect(r.message).toContain("session owner 'n2' is off-line");
    expect(r.message).toContain('start a new session');
  });

  it('refuses a session call for another node from a client that does not follow redirects, naming the owner', () => {
    const r = expectReject(run(self(0), [peer('n2', 0)], deposit('n2.their-session', { follows: false })), status.FAILED_PRECONDITION);
    expect(r.message).toContain("session belongs to node 'n2'");
  });

  it('redirects that plain call to the owner when the node forwards plain calls (forwardLegacy)', () => {
    const d = expectRedirect(run(self(0), [peer('n2', 0)], deposit('n2.their-session', { follows: false }), { ...cfg, forwardLegacy: true }));
    expect(d.reason).toBe('session');
  });

  it('balances an enter call that carries a token like any call', () => {
    const begin = call('/bank.Banking/BeginTransaction', { session: 'n2.their-session', sessionOwner: 'n2' });
    expect(run(self(0.1), [peer('n2', 0)], begin)).toBe(LOCAL);
    expect(expectRedirect(run(self(0.9), [peer('n3', 0)], begin)).reason).toBe('load');
  });

  it('ignores a token on a method outside every session rule', () => {
    const sessionsOnly: PolicyConfig = { ...cfg, rules: new CompiledRules(SESSIONS) };
    // Owner n9 is unknown: the call would be refused if the token counted.
    const quote = call('/bank.Securities/GetQuote', { session: 'n9.whatever-token', sessionOwner: 'n9' });
    expect(run(self(0.1), [], quote, sessionsOnly)).toBe(LOCAL);
  });
});

describe('decide: clients that do not follow redirects (legacy)', () => {
  const plain = () => call('/bank.Banking/GetBalance', { follows: false });

  it('runs a plain call here when the node does not forward, however loaded', () => {
    expect(run(self(0.9), [peer('n2', 0)], plain())).toBe(LOCAL);
  });

  it('moves a plain call like a following one when the node forwards plain calls', () => {
    const d = expectRedirect(run(self(0.9), [peer('n2', 0)], plain(), { ...cfg, forwardLegacy: true }));
    expect(d.reason).toBe('load');
  });

  it('still runs a plain call here below the threshold when the node forwards', () => {
    expect(run(self(0.2), [peer('n2', 0)], plain(), { ...cfg, forwardLegacy: true })).toBe(LOCAL);
  });
});

describe('decide: a call a peer forwarded for a plain client', () => {
  const forwarded = (over: Partial<CallInfo> = {}) => call('/bank.Banking/GetBalance', { forwarded: true, hops: 0, ...over });
  const everyRule: PolicyConfig = { ...cfg, forwardLegacy: true, maxHops: 16 };

  it('runs here whatever the load, the hop limit or forwardLegacy: it is never moved again', () => {
    expect(run(self(0.9), [peer('n2', 0)], forwarded(), everyRule)).toBe(LOCAL);
    expect(run(self(0.9, { status: 'DRAINING' }), [peer('n2', 0)], forwarded(), everyRule)).toBe(LOCAL);
  });

  it('does not go to its dedicated home elsewhere', () => {
    expect(run(self(0.1), [peer('n2', 0)], call('/bank.Securities/GetQuote', { forwarded: true }), everyRule)).toBe(LOCAL);
  });

  it('is refused, not redirected, when its session belongs to another node', () => {
    expectReject(run(self(0), [peer('n2', 0)], deposit('n2.their-session', { forwarded: true }), everyRule), status.FAILED_PRECONDITION);
  });

  it('is refused, not redirected, for a service this node does not host', () => {
    const s = self(0, { hosts: () => false });
    expectReject(run(s, [peer('n2', 0)], forwarded(), everyRule), status.UNIMPLEMENTED);
  });

  it('is refused with RESOURCE_EXHAUSTED when this node is full', () => {
    expectReject(run(full(), [peer('n2', 0)], forwarded(), everyRule), status.RESOURCE_EXHAUSTED);
  });
});

describe('decide: a draining or unhealthy node', () => {
  const get = () => call('/bank.Banking/GetBalance');

  it.each([
    ['DRAINING', 'draining'],
    ['UNHEALTHY', 'unhealthy'],
  ] as const)('moves every call it can while %s, even at load 0, to any peer with a free slot', (s, reason) => {
    const d = expectRedirect(run(self(0, { status: s }), [peer('n2', 0.9)], get()));
    expect(d.reason).toBe(reason);
    expect(redirectDetail(d, '/bank.Banking/GetBalance', BANKING, 'n1', cfg.threshold)).toBe(`node n1 is ${reason}`);
  });

  it('runs the call here when no peer has a free slot', () => {
    expect(run(self(0.3, { status: 'DRAINING' }), [peer('n2', 1)], get())).toBe(LOCAL);
  });

  it('sends the call to a peer with queue space when this node is full', () => {
    expectRedirect(run({ ...full(), status: 'DRAINING' }, [peer('n2', 1)], get()));
  });

  it('refuses the call when no peer has room and this node is full', () => {
    expectReject(run({ ...full(), status: 'DRAINING' }, [peer('n2', 5)], get()), status.RESOURCE_EXHAUSTED);
  });

  it('does not move calls of clients that cannot follow', () => {
    expect(run(self(0, { status: 'DRAINING' }), [peer('n2', 0)], call('/bank.Banking/GetBalance', { follows: false }))).toBe(LOCAL);
  });
});

describe('decide: dedicated homes', () => {
  const quote = () => call('/bank.Securities/GetQuote');

  it('sends the call to its home while the home is below the threshold, even when this node is idle', () => {
    const d = expectRedirect(run(self(0), [peer('n2', 0.4), peer('n3', 0)], quote()));
    expect(d.peer.nodeId).toBe('n2');
    expect(d.reason).toBe('service');
    expect(redirectDetail(d, '/bank.Securities/GetQuote', SECURITIES, 'n1', cfg.threshold)).toBe('/bank.Securities/GetQuote prefers its home');
  });

  it('runs the call here under the load rule when every home is at or over the threshold', () => {
    expect(run(self(0.1), [peer('n2', 0.5)], quote())).toBe(LOCAL);
  });

  it('does not send a loaded node\'s call to a home at or over the threshold: other hosts share it', () => {
    const d = expectRedirect(run(self(0.9), [peer('n2', 0.5), peer('n3', 0.2)], quote()));
    expect(d.peer.nodeId).toBe('n3');
    expect(d.reason).toBe('load');
  });

  it('passes over a home that is off-line or stale', () => {
    expect(run(self(0.1), [peer('n2', 0, { status: 'OFFLINE' })], quote())).toBe(LOCAL);
    expect(run(self(0.1), [peer('n2', 0, { receivedAt: NOW - 5_000 })], quote())).toBe(LOCAL);
  });

  it('keeps the call on this node when it is a home below the threshold', () => {
    const home = self(0.2, { nodeId: 'n2' });
    expect(run(home, [peer('n3', 0)], quote())).toBe(LOCAL);
  });

  it('sends a loaded home\'s call, under the load rule, to the least-loaded other host', () => {
    const home = self(0.9, { nodeId: 'n2' });
    const d = expectRedirect(run(home, [peer('n3', 0.6), peer('n4', 0.1)], quote()));
    expect(d.peer.nodeId).toBe('n4');
    expect(d.reason).toBe('load');
  });

  it('applies only to the methods its pattern names', () => {
    expect(run(self(0), [peer('n2', 0)], call('/bank.Banking/GetBalance'))).toBe(LOCAL);
  });

  it("sends a draining node's call to its home below the threshold first (step 3 comes before step 4)", () => {
    const d = expectRedirect(run(self(0, { status: 'DRAINING' }), [peer('n3', 0), peer('n2', 0.4)], quote()));
    expect(d.peer.nodeId).toBe('n2');
    expect(d.reason).toBe('service');
  });
});

describe('decide: no rules of a kind, no look-up', () => {
  it('looks up neither a session role nor homes when no rule names any', () => {
    const none = new CompiledRules([], {});
    const role = vi.spyOn(none, 'sessionRole');
    const homes = vi.spyOn(none, 'homes');
    const c = { ...cfg, rules: none };
    expect(run(self(0), [peer('n2', 0)], deposit('n1.live-session'), c)).toBe(LOCAL);
    expectRedirect(run(self(0.9), [peer('n2', 0)], call('/bank.Securities/GetQuote'), c));
    expect(role).not.toHaveBeenCalled();
    expect(homes).not.toHaveBeenCalled();
  });

  it('looks up homes but no session role with dedicated homes only, and the reverse', () => {
    const homesOnly = new CompiledRules([], { 'bank.Securities/*': ['n2'] });
    const sessionsOnly = new CompiledRules(SESSIONS, {});
    const role = vi.spyOn(homesOnly, 'sessionRole');
    const homes = vi.spyOn(sessionsOnly, 'homes');
    run(self(0), [peer('n2', 0)], deposit('n1.live-session'), { ...cfg, rules: homesOnly });
    run(self(0.9), [peer('n2', 0)], deposit('n1.live-session'), { ...cfg, rules: sessionsOnly });
    run(self(0.9), [peer('n2', 0)], call('/bank.Securities/GetQuote'), { ...cfg, rules: sessionsOnly });
    expect(role).not.toHaveBeenCalled();
    expect(homes).not.toHaveBeenCalled();
  });
});
