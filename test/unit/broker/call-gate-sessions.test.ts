import { status, type sendUnaryData, type UntypedHandleCall } from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
import { sessionOf } from '../../../src/broker/local-call';
import { NOT_PRINTABLE } from '../../../src/broker/session-header-guard';
import { answers, BANK_SESSIONS, FakeCall, FakeStreamCall, gateFor, heldHandler, invoke, md, method, turn } from './gate-fakes';

const SERVICE = 'bank.Banking';
const BEGIN = method('/bank.Banking/BeginTransaction');
const DEPOSIT = method('/bank.Banking/Deposit');
const COMMIT = method('/bank.Banking/Commit');
const STATEMENTS = method('/bank.Banking/StreamStatements', 'server');

const ok = ((_c: unknown, cb: sendUnaryData<unknown>) => cb(null, {})) as unknown as UntypedHandleCall;

/** A gate with the bank's session rule and a live session of this node; returns its token. */
function withSession(o: Parameters<typeof gateFor>[0] = {}) {
  const g = gateFor({ sessions: BANK_SESSIONS, ...o });
  const begin = new FakeCall(md({ follow: true }));
  invoke(g.gate.wrap(BEGIN, SERVICE, ok), begin, () => {});
  const token = begin.sessionHeader()!;
  expect(token).toMatch(/^n1\./);
  return { ...g, token };
}

describe('CallGate: sessions', () => {
  it('opens a session when an enter call succeeds and sends its token with the answer', () => {
    const { gate, sessions } = gateFor({ sessions: BANK_SESSIONS });
    const call = new FakeCall(md({ follow: true }));
    invoke(gate.wrap(BEGIN, SERVICE, ok), call, () => {});
    expect(call.headers).toHaveLength(1);
    expect(call.sessionHeader()).toMatch(/^n1\.[A-Za-z0-9_-]{8,64}$/);
    expect(call.headers[0].get('peerbroker-node')).toEqual(['n1']);
    expect(sessions.touch(call.sessionHeader()!, Date.now())).toBe(true);
  });

  it('opens no session when the enter call fails', () => {
    const { gate, sessions } = gateFor({ sessions: BANK_SESSIONS });
    const call = new FakeCall(md({ follow: true }));
    const failing = ((_c: unknown, cb: sendUnaryData<unknown>) => cb({ code: status.INTERNAL, details: 'x' }, null)) as unknown as UntypedHandleCall;
    invoke(gate.wrap(BEGIN, SERVICE, failing), call, () => {});
    expect(call.sessionHeader()).toBeUndefined();
    expect(sessions.size).toBe(0);
  });

  it('counts only the first answer of a handler that calls back twice: one session, one answer', () => {
    const { gate, sessions } = gateFor({ sessions: BANK_SESSIONS });
    const open = vi.spyOn(sessions, 'open');
    const { got, callback } = answers();
    const twice = ((_c: unknown, cb: sendUnaryData<unknown>) => {
      cb(null, { n: 1 });
      cb(null, { n: 2 });
    }) as unknown as UntypedHandleCall;
    invoke(gate.wrap(BEGIN, SERVICE, twice), new FakeCall(md({ follow: true })), callback);
    expect(open).toHaveBeenCalledTimes(1);
    expect(got).toEqual([{ err: null, value: { n: 1 } }]);
  });

  it('ends the session when an exit call of it succeeds and sends an empty token', () => {
    const { gate, sessions, token } = withSession();
    const call = new FakeCall(md({ follow: true, session: token }));
    invoke(gate.wrap(COMMIT, SERVICE, ok), call, () => {});
    expect(call.sessionHeader()).toBe('');
    expect(sessions.touch(token, Date.now())).toBe(false);
  });

  it('sends the token of a streaming enter call when the call starts, before any message', () => {
    const rules = [{ enter: 'bank.Banking/StreamStatements', within: 'bank.Banking/*', exit: 'bank.Banking/Commit' }];
    const { gate } = gateFor({ sessions: rules });
    const call = new FakeStreamCall(md({ follow: true }));
    let headersAtStart = 0;
    invoke(gate.wrap(STATEMENTS, SERVICE, ((c: FakeStreamCall) => void (headersAtStart = c.headers.length)) as unknown as UntypedHandleCall), call);
    expect(headersAtStart).toBe(1);
    expect(call.sessionHeader()).toMatch(/^n1\./);
  });

  it('runs a call of a live session here', () => {
    const { gate, token } = withSession();
    const { got, callback } = answers();
    invoke(gate.wrap(DEPOSIT, SERVICE, ok), new FakeCall(md({ follow: true, session: token })), callback);
    expect(got[0].err).toBeNull();
  });

  describe('limits', () => {
    it('refuses an enter call past maxSessions with RESOURCE_EXHAUSTED before its handler runs', () => {
      const { gate, sessions, token } = withSession({ maxSessions: 1 });
      const { got, callback } = answers();
      const handler = vi.fn(ok as unknown as () => void);
      invoke(gate.wrap(BEGIN, SERVICE, handler as unknown as UntypedHandleCall), new FakeCall(md({ follow: true })), callback);
      expect(handler).not.toHaveBeenCalled();
      expect(got[0].err?.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(got[0].err?.details).toContain('1 live sessions (maxSessions)');
      // Nothing else is lost: the live session still works.
      expect(sessions.touch(token, Date.now())).toBe(true);
    });

    it('counts enter calls still running against maxSessions, so each one let in gets its session', () => {
      const { gate, sessions } = gateFor({ sessions: BANK_SESSIONS, maxSessions: 2, capacity: 4 });
      const held = heldHandler();
      const begin = gate.wrap(BEGIN, SERVICE, held.handler);
      const results = [answers(), answers(), answers()];
      for (const r of results) invoke(begin, new FakeCall(md({ follow: true })), r.callback);
      expect(held.calls).toHaveLength(2);
      expect(results[2].got[0].err?.code).toBe(status.RESOURCE_EXHAUSTED);
      for (const cb of held.pending) cb(null, {});
      expect(sessions.size).toBe(2);
    });

    it('gives the place back when an enter call is cancelled while it waits', () => {
      const { gate, sessions } = gateFor({ sessions: BANK_SESSIONS, maxSessions: 1, capacity: 1 });
      const held = heldHandler();
      invoke(gate.wrap(DEPOSIT, SERVICE, held.handler), new FakeCall(md()), () => {});
      const waiting = new FakeCall(md({ follow: true }));
      invoke(gate.wrap(BEGIN, SERVICE, ok), waiting, () => {});
      waiting.cancel();
      expect(sessions.reserve()).toBe(true);
    });

    it('refuses a call of a session pinned here when the queue is full, naming the session, instead of queueing it', async () => {
      const { gate, admission, token } = withSession({ capacity: 1, maxQueue: 1 });
      const held = heldHandler();
      const deposit = gate.wrap(DEPOSIT, SERVICE, held.handler);
      invoke(deposit, new FakeCall(md({ follow: true, session: token })), () => {}); // runs
      invoke(deposit, new FakeCall(md({ follow: true, session: token })), () => {}); // waits
      const { got, callback } = answers();
      invoke(deposit, new FakeCall(md({ follow: true, session: token })), callback);
      expect(got).toHaveLength(1);
      expect(got[0].err?.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(got[0].err?.details).toContain(`session '${token}'`);
      // No location: a pinned call has nowhere else to go.
      expect(got[0].err?.metadata?.get('peerbroker-location') ?? []).toEqual([]);
      expect(admission.queued).toBe(1);
      held.pending[0](null, {});
      await turn();
      expect(held.calls).toHaveLength(2);
    });
  });

  describe('an enter call whose client goes away before the handler answers', () => {
    /** A gate whose BeginTransaction handler keeps its callbacks; `ended` lists every session end. */
    function heldBegin(o: Parameters<typeof gateFor>[0] = {}) {
      const g = gateFor({ sessions: BANK_SESSIONS, maxSessions: 1, ...o });
      const ended: Array<[string, string]> = [];
      g.sessions.onEnd((session, why) => ended.push([session.id, why]));
      const held = heldHandler();
      const call = new FakeCall(md({ follow: true }));
      invoke(g.gate.wrap(BEGIN, SERVICE, held.handler), call, () => {});
      // What the handler learned, and may keep state under.
      const token = sessionOf(held.calls[0])!.id;
      return { ...g, ended, held, call, token };
    }

    it('opens no session and tells the listeners it was aborted when the handler answers OK after a cancel', () => {
      const { sessions, ended, held, call, token } = heldBegin();
      call.cancel();
      held.pending[0](null, {});
      expect(call.sessionHeader()).toBeUndefined();
      expect(sessions.size).toBe(0);
      expect(ended).toEqual([[token, 'aborted']]);
      expect(sessions.ended.aborted).toBe(1);
      // Its place is given back.
      expect(sessions.reserve()).toBe(true);
    });

    it('says aborted also when the handler answers after the cancel grace took its slot back', async () => {
      const { ended, held, call, token, onOverrun } = heldBegin({ cancelGraceMs: 5 });
      call.cancel();
      await new Promise((r) => setTimeout(r, 20));
      expect(onOverrun).toHaveBeenCalled();
      held.pending[0](null, {});
      expect(ended).toEqual([[token, 'aborted']]);
    });

    it('calls no listener when the handler fails after the cancel: it knows the call failed', () => {
      const { sessions, ended, held, call } = heldBegin();
      call.cancel();
      held.pending[0]({ code: status.INTERNAL, details: 'x' }, null);
      expect(ended).toEqual([]);
      expect(sessions.ended.aborted).toBe(0);
    });
  });

  describe('malformed tokens', () => {
    it('refuses a malformed token with INVALID_ARGUMENT; nothing runs', () => {
      const { gate } = gateFor({ sessions: BANK_SESSIONS });
      const { got, callback } = answers();
      const handler = vi.fn();
      invoke(gate.wrap(DEPOSIT, SERVICE, handler as unknown as UntypedHandleCall), new FakeCall(md({ session: 'no-dot' })), callback);
      expect(handler).not.toHaveBeenCalled();
      expect(got[0].err?.code).toBe(status.INVALID_ARGUMENT);
      expect(got[0].err?.details).toContain("malformed 'peerbroker-session' token");
    });

    it('says so when the token held characters outside printable ASCII', () => {
      const { gate } = gateFor({ sessions: BANK_SESSIONS });
      const { got, callback } = answers();
      invoke(gate.wrap(DEPOSIT, SERVICE, ok), new FakeCall(md({ session: NOT_PRINTABLE })), callback);
      expect(got[0].err?.code).toBe(status.INVALID_ARGUMENT);
      expect(got[0].err?.details).toContain('outside printable ASCII');
    });
  });
});
