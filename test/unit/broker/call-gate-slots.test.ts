import { status, type sendUnaryData, type UntypedHandleCall } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { alive, collectGarbage } from '../../helpers/gc';
import { answers, FakeCall, FakeStreamCall, gateFor, heldGetBalance, invoke, md, method, turn } from './gate-fakes';

const GET = method('/bank.Banking/GetBalance');
const STREAM = method('/bank.Banking/StreamStatements', 'server');
const SERVICE = 'bank.Banking';

afterEach(() => {
  vi.useRealTimers();
});

describe('CallGate: a call holds its slot until its handler ends', () => {
  it('frees the slot when the handler answers, after the answer is handed to grpc-js', () => {
    const { gate, admission } = gateFor();
    const order: string[] = [];
    const wrapped = gate.wrap(GET, SERVICE, ((_c: unknown, cb: sendUnaryData<unknown>) => {
      expect(admission.running).toBe(1);
      cb(null, { ok: true });
    }) as unknown as UntypedHandleCall);
    invoke(wrapped, new FakeCall(md()), () => order.push(`answered, running ${admission.running}`));
    expect(order).toEqual(['answered, running 1']);
    expect(admission.running).toBe(0);
    expect(gate.stats.run).toBe(1);
  });

  it('frees the slot when the handler answers with an error, and passes the error on', () => {
    const { gate, admission } = gateFor();
    const { got, callback } = answers();
    const wrapped = gate.wrap(GET, SERVICE, ((_c: unknown, cb: sendUnaryData<unknown>) =>
      cb({ code: status.NOT_FOUND, details: 'no such account' }, null)) as unknown as UntypedHandleCall);
    invoke(wrapped, new FakeCall(md()), callback);
    expect(got).toHaveLength(1);
    expect(got[0].err?.code).toBe(status.NOT_FOUND);
    expect(admission.running).toBe(0);
  });

  it('answers UNKNOWN naming the exception and frees the slot when the handler throws', () => {
    const { gate, admission } = gateFor();
    const { got, callback } = answers();
    const wrapped = gate.wrap(GET, SERVICE, (() => {
      throw new Error('boom');
    }) as unknown as UntypedHandleCall);
    invoke(wrapped, new FakeCall(md()), callback);
    expect(got[0].err?.code).toBe(status.UNKNOWN);
    expect(got[0].err?.details).toContain('boom');
    expect(admission.running).toBe(0);
  });

  it('never runs a call cancelled while it waited, and frees its queue place', async () => {
    const { admission, held, wrapped } = heldGetBalance({ capacity: 1 });
    invoke(wrapped, new FakeCall(md()), () => {});
    const waiting = new FakeCall(md());
    invoke(wrapped, waiting, () => {});
    expect(admission.queued).toBe(1);
    waiting.cancel();
    expect(admission.queued).toBe(0);
    held.pending[0](null, {});
    await turn();
    expect(held.calls).toHaveLength(1);
    expect(admission.running).toBe(0);
  });

  it('keeps nothing of calls cancelled while they waited: their requests can be collected at once', async () => {
    const { admission, held, wrapped } = heldGetBalance({ capacity: 1, maxQueue: 1_000 });
    invoke(wrapped, new FakeCall(md()), () => {});
    const refs: WeakRef<object>[] = [];
    (() => {
      for (let i = 0; i < 200; i++) {
        const request = { body: Buffer.alloc(64 * 1024) };
        refs.push(new WeakRef(request));
        const call = new FakeCall(md(), request);
        invoke(wrapped, call, () => {});
        call.cancel(); // the deadline passed while it waited
      }
    })();
    await collectGarbage();
    expect(admission.queued).toBe(0);
    // The slot is still held by the first call; the 200 cancelled ones are gone.
    expect(alive(refs)).toBe(0);
  });

  it('keeps the slot of a call cancelled while its handler runs until the handler answers', async () => {
    const { admission, held, wrapped } = heldGetBalance({ capacity: 1 });
    const running = new FakeCall(md());
    invoke(wrapped, running, () => {});
    invoke(wrapped, new FakeCall(md()), () => {});
    running.cancel();
    await turn();
    // The handler still runs: the next call waits, and the load says so.
    expect(held.calls).toHaveLength(1);
    expect(admission.running).toBe(1);
    expect(admission.load()).toBe(1);
    held.pending[0](null, {});
    await turn();
    expect(held.calls).toHaveLength(2);
  });

  it('keeps the slot of a cancelled stream until the handler ends its side', async () => {
    const { gate, admission } = gateFor({ capacity: 1 });
    const streams: FakeStreamCall[] = [];
    const wrapped = gate.wrap(STREAM, SERVICE, ((call: FakeStreamCall) => void streams.push(call)) as unknown as UntypedHandleCall);
    const first = new FakeStreamCall(md());
    invoke(wrapped, first);
    invoke(wrapped, new FakeStreamCall(md()));
    first.cancel(); // grpc-js destroys the stream: no 'finish' will come
    await turn();
    expect(streams).toHaveLength(1);
    expect(admission.running).toBe(1);
    first.end(); // the handler noticed the cancel and stopped
    await turn();
    expect(streams).toHaveLength(2);
  });

  it('takes the slot back cancelGraceMs after the cancel when the handler never ends, and says so', async () => {
    const { admission, onOverrun, held, wrapped } = heldGetBalance({ capacity: 1, cancelGraceMs: 1_000 });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const running = new FakeCall(md());
    invoke(wrapped, running, () => {});
    running.cancel();
    vi.advanceTimersByTime(999);
    expect(admission.running).toBe(1);
    vi.advanceTimersByTime(1);
    expect(admission.running).toBe(0);
    expect(onOverrun).toHaveBeenCalledWith('/bank.Banking/GetBalance');
    // A late answer changes nothing.
    held.pending[0](null, {});
    expect(admission.running).toBe(0);
    await turn();
  });

  it('frees the slot when a streaming handler ends its stream', () => {
    const { gate, admission } = gateFor();
    const wrapped = gate.wrap(STREAM, SERVICE, ((call: FakeStreamCall) => call.end()) as unknown as UntypedHandleCall);
    invoke(wrapped, new FakeStreamCall(md()));
    expect(admission.running).toBe(0);
  });

  it('frees the slot when a streaming handler fails with an error', () => {
    const { gate, admission } = gateFor();
    const wrapped = gate.wrap(STREAM, SERVICE, ((call: FakeStreamCall) =>
      call.emit('error', { code: status.INTERNAL, details: 'x' })) as unknown as UntypedHandleCall);
    invoke(wrapped, new FakeStreamCall(md()));
    expect(admission.running).toBe(0);
  });

  it('fails the stream with UNKNOWN and frees the slot when a streaming handler throws', async () => {
    const { gate, admission, held, wrapped: hold } = heldGetBalance({ capacity: 1 });
    const errors: Array<{ code: number }> = [];
    const wrapped = gate.wrap(STREAM, SERVICE, (() => {
      throw new Error('boom');
    }) as unknown as UntypedHandleCall);
    invoke(hold, new FakeCall(md()), () => {});
    // Queued, so it starts from the admission, not from inside grpc-js's own try.
    const call = new FakeStreamCall(md());
    call.on('error', (e: { code: number }) => errors.push(e));
    invoke(wrapped, call);
    held.pending[0](null, {});
    await turn();
    expect(errors.map((e) => e.code)).toEqual([status.UNKNOWN]);
    expect(admission.running).toBe(0);
  });

  it('ignores the cancel grpc-js reports after every finished call', async () => {
    const { admission, held, wrapped } = heldGetBalance({ capacity: 1 });
    const done = new FakeCall(md());
    invoke(wrapped, done, () => {});
    held.pending[0](null, {});
    invoke(wrapped, new FakeCall(md()), () => {});
    done.cancel();
    expect(admission.running).toBe(1);
    expect(held.calls).toHaveLength(2);
  });

  describe('answer first, then the next call', () => {
    it('hands the answer to grpc-js before the next waiting handler starts', async () => {
      const { gate } = gateFor({ capacity: 1 });
      const log: string[] = [];
      let first: sendUnaryData<unknown> | undefined;
      const wrapped = gate.wrap(GET, SERVICE, ((call: FakeCall, cb: sendUnaryData<unknown>) => {
        const name = (call.request as { name: string }).name;
        log.push(`start ${name}`);
        if (name === 'a') first = cb;
        else cb(null, {}); // synchronous handlers
      }) as unknown as UntypedHandleCall);
      for (const name of ['a', 'b', 'c']) invoke(wrapped, new FakeCall(md(), { name }), () => log.push(`answer ${name}`));
      first!(null, {});
      // The queue is not drained in the first caller's stack.
      expect(log).toEqual(['start a', 'answer a']);
      await turn();
      await turn();
      expect(log).toEqual(['start a', 'answer a', 'start b', 'answer b', 'start c', 'answer c']);
    });
  });

  describe('a client that follows redirects', () => {
    it('gets peerbroker-node in the headers of an accepted call', () => {
      const { gate } = gateFor();
      const wrapped = gate.wrap(GET, SERVICE, ((_c: unknown, cb: sendUnaryData<unknown>) => cb(null, {})) as unknown as UntypedHandleCall);
      const follow = new FakeCall(md({ follow: true }));
      const plain = new FakeCall(md());
      invoke(wrapped, follow, () => {});
      invoke(wrapped, plain, () => {});
      expect(follow.headers.map((h) => h.get('peerbroker-node'))).toEqual([['n1']]);
      expect(plain.headers).toEqual([]);
    });
  });
});
