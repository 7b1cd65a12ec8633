import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { answers, FakeCall, heldGetBalance, invoke, md } from './gate-fakes';

describe('what the gate counts for the metrics', () => {
  it('counts calls let in per method, and refusals by reason, reporting those that mean the node is full', () => {
    // One slot, no queue: the first call holds it, the second is refused.
    const { gate, wrapped, held, onOverload } = heldGetBalance({ capacity: 1, maxQueue: 0 });
    const first = answers();
    invoke(wrapped, new FakeCall(md()), first.callback);
    const second = answers();
    invoke(wrapped, new FakeCall(md()), second.callback);
    const bad = answers();
    invoke(wrapped, new FakeCall(md({ session: 'not a token' })), bad.callback);

    const [counts] = gate.counters.methods;
    expect(counts).toMatchObject({ service: 'bank.Banking', method: 'GetBalance', local: 1 });
    expect(Object.fromEntries(counts.reject)).toEqual({ overloaded: 1, 'malformed-token': 1 });
    expect(second.got[0].err?.code).toBe(status.RESOURCE_EXHAUSTED);
    // Only the refusal for a full node is reported (the broker logs it at warn, rate-limited).
    expect(onOverload).toHaveBeenCalledTimes(1);
    expect(onOverload.mock.calls[0][0]).toMatchObject({ kind: 'reject', reason: 'overloaded' });
    held.pending[0](null, {});
  });
});
