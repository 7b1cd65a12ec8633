import { describe, expect, it } from 'vitest';
import { Admission, ticket, type Ticket } from '../../../src/broker/admission';
import { alive, collectGarbage } from '../../helpers/gc';

/** One turn of the event loop: a call given a freed slot starts then. */
const turn = () => new Promise<void>((r) => setImmediate(r));

/** An admission with a record of which calls started and of every threshold crossing. */
function setup(capacity = 2, maxQueue = 3, threshold = 0.5) {
  // Each entry: whether the load was at or above the threshold when a report was asked for.
  const crossings: boolean[] = [];
  const admission: Admission = new Admission(capacity, maxQueue, threshold, () => crossings.push(admission.load() >= threshold));
  const started: string[] = [];
  const tickets = new Map<string, Ticket>();
  const admit = (name: string) => {
    const t = ticket(() => started.push(name));
    tickets.set(name, t);
    return admission.admit(t);
  };
  const cancel = (name: string) => admission.cancel(tickets.get(name)!);
  return { admission, started, crossings, admit, cancel };
}

describe('Admission', () => {
  describe('slots and queue', () => {
    it('starts at most capacity calls at once and queues the rest', () => {
      const { admission, started, admit } = setup(2, 3);
      expect(admit('a')).toBe('started');
      expect(admit('b')).toBe('started');
      expect(admit('c')).toBe('queued');
      expect(admit('d')).toBe('queued');
      expect(started).toEqual(['a', 'b']);
      expect(admission.running).toBe(2);
      expect(admission.queued).toBe(2);
    });

    it('starts a call synchronously when a slot is free', () => {
      const { started, admit } = setup(1, 1);
      admit('a');
      expect(started).toEqual(['a']);
    });

    it('refuses a call when maxQueue calls wait already, and does nothing with it', () => {
      const { admission, started, admit } = setup(1, 2);
      admit('a');
      admit('b');
      admit('c');
      expect(admit('d')).toBe('full');
      expect(admission.queued).toBe(2);
      admission.release();
      admission.release();
      admission.release();
      return turn().then(() => expect(started).toEqual(['a', 'b', 'c']));
    });

    it('refuses every call past the slots when maxQueue is 0', () => {
      const { admission, admit } = setup(1, 0);
      expect(admit('a')).toBe('started');
      expect(admit('b')).toBe('full');
      expect(admission.queued).toBe(0);
    });

    it('gives a freed slot to the first waiting call, which starts on the next turn', async () => {
      const { admission, started, admit } = setup(1, 5);
      admit('a');
      admit('b');
      admission.release();
      // The slot is b's already: a newcomer queues behind it instead of taking it.
      expect(admission.running).toBe(1);
      expect(admission.queued).toBe(0);
      expect(admit('c')).toBe('queued');
      expect(started).toEqual(['a']);
      await turn();
      expect(started).toEqual(['a', 'b']);
    });

    it('starts waiting calls in FIFO order', async () => {
      const { admission, started, admit } = setup(1, 5);
      for (const n of ['a', 'b', 'c', 'd']) admit(n);
      admission.release();
      await turn();
      admission.release();
      admission.release();
      await turn();
      expect(started).toEqual(['a', 'b', 'c', 'd']);
      expect(admission.running).toBe(1);
      expect(admission.queued).toBe(0);
    });

    it('starts only the calls that were ready when the turn began (a call they free waits a turn)', async () => {
      const admission = new Admission(1, 5, 1, () => {});
      const started: string[] = [];
      // Synchronous handlers: each ends as soon as it starts.
      const sync = (name: string) => ticket(() => (started.push(name), admission.release()));
      admission.admit(ticket(() => started.push('a')));
      for (const n of ['b', 'c', 'd']) admission.admit(sync(n));
      admission.release();
      expect(started).toEqual(['a']);
      await turn();
      expect(started).toEqual(['a', 'b']);
      await turn();
      expect(started).toEqual(['a', 'b', 'c']);
      await turn();
      expect(started).toEqual(['a', 'b', 'c', 'd']);
      expect(admission.running).toBe(0);
    });

    it('frees the slot when the last call is released and nothing waits', () => {
      const { admission, admit } = setup(2, 2);
      admit('a');
      admission.release();
      expect(admission.running).toBe(0);
      expect(admission.queued).toBe(0);
    });

    it('keeps FIFO order over many calls', async () => {
      const { admission, started, admit } = setup(1, 10_000);
      admit('first');
      const names = Array.from({ length: 3000 }, (_, i) => `c${i}`);
      for (const n of names) admit(n);
      for (let i = 0; i < 3000; i++) {
        admission.release();
        if (i % 100 === 0) await turn();
      }
      await turn();
      expect(started).toEqual(['first', ...names]);
      expect(admission.queued).toBe(0);
    });
  });

  describe('cancelling a waiting call', () => {
    it('never starts the cancelled call and frees its queue place', async () => {
      const { admission, started, admit, cancel } = setup(1, 2);
      admit('a');
      admit('b');
      admit('c');
      expect(admission.full()).toBe(true);

      expect(cancel('b')).toBe(true);
      expect(admission.queued).toBe(1);
      expect(admission.full()).toBe(false);

      admission.release();
      await turn();
      admission.release();
      expect(started).toEqual(['a', 'c']);
      expect(admission.running).toBe(0);
    });

    it('counts a call cancelled twice only once', () => {
      const { admission, admit, cancel } = setup(1, 3);
      admit('a');
      admit('b');
      admit('c');
      expect(cancel('b')).toBe(true);
      expect(cancel('b')).toBe(false);
      expect(admission.queued).toBe(1);
    });

    it('does nothing when the call has already started', async () => {
      const { admission, admit, cancel } = setup(1, 3);
      admit('a');
      admit('b');
      admission.release();
      await turn();
      expect(cancel('b')).toBe(false);
      expect(admission.running).toBe(1);
      expect(admission.queued).toBe(0);
    });

    it('passes the slot on when the call had been given one but not started yet', async () => {
      const { admission, started, admit, cancel } = setup(1, 3);
      admit('a');
      admit('b');
      admit('c');
      admission.release(); // b has the slot, starts next turn
      expect(cancel('b')).toBe(true);
      await turn();
      expect(started).toEqual(['a', 'c']);
      expect(admission.running).toBe(1);
      expect(admission.queued).toBe(0);
    });

    it('frees the slot when every waiting call was cancelled', () => {
      const { admission, started, admit, cancel } = setup(1, 3);
      admit('a');
      admit('b');
      admit('c');
      cancel('b');
      cancel('c');
      admission.release();
      expect(admission.running).toBe(0);
      expect(admission.queued).toBe(0);
      admit('d');
      expect(started).toEqual(['a', 'd']);
    });

    it('keeps nothing of a cancelled call, so what it holds can be collected at once', async () => {
      const admission = new Admission(1, 1_000, 1, () => {});
      admission.admit(ticket(() => {}));
      const refs: WeakRef<object>[] = [];
      (() => {
        for (let i = 0; i < 100; i++) {
          const request = Buffer.alloc(64 * 1024);
          refs.push(new WeakRef(request));
          const t = ticket(() => void request.length);
          admission.admit(t);
          admission.cancel(t);
        }
      })();
      await collectGarbage();
      expect(alive(refs)).toBe(0);
      expect(admission.queued).toBe(0);
    });
  });

  describe('load', () => {
    it('is (running + queued) / capacity', () => {
      const { admission, admit } = setup(4, 8);
      expect(admission.load()).toBe(0);
      admit('a');
      expect(admission.load()).toBe(0.25);
      for (const n of ['b', 'c', 'd', 'e']) admit(n);
      expect(admission.running).toBe(4);
      expect(admission.queued).toBe(1);
      expect(admission.load()).toBe(1);
    });

    it('is capped at 1 when calls are queued', () => {
      const { admission, admit } = setup(2, 10);
      for (const n of ['a', 'b', 'c', 'd', 'e']) admit(n);
      expect(admission.load()).toBe(1);
    });

    it('is never below the sampled meter load', () => {
      const { admission, admit } = setup(4, 4);
      admission.meterLoad = 0.6;
      expect(admission.load()).toBe(0.6);
      admit('a');
      expect(admission.load()).toBe(0.6);
      admit('b');
      admit('c');
      expect(admission.load()).toBe(0.75);
    });

    it('caps a meter load above 1 at 1', () => {
      const { admission } = setup(4, 4);
      admission.meterLoad = 1.7;
      expect(admission.load()).toBe(1);
    });

    it('does not count cancelled calls', () => {
      const { admission, admit, cancel } = setup(2, 4);
      admit('a');
      admit('b');
      admit('c');
      cancel('c');
      expect(admission.load()).toBe(1);
      admission.release();
      expect(admission.load()).toBe(0.5);
    });
  });

  describe('full', () => {
    it('is true exactly when every slot is busy and the queue is full', () => {
      const { admission, admit } = setup(2, 2);
      expect(admission.full()).toBe(false);
      admit('a');
      admit('b');
      expect(admission.full()).toBe(false); // slots busy, queue empty
      admit('c');
      expect(admission.full()).toBe(false); // one queue place left
      admit('d');
      expect(admission.full()).toBe(true);
      admission.release();
      expect(admission.full()).toBe(false); // c has the slot, queue has room again
    });

    it('is true as soon as every slot is busy when maxQueue is 0', () => {
      const { admission, admit } = setup(2, 0);
      admit('a');
      expect(admission.full()).toBe(false);
      admit('b');
      expect(admission.full()).toBe(true);
    });

    it('does not depend on the meter load', () => {
      const { admission } = setup(2, 2);
      admission.meterLoad = 1;
      expect(admission.load()).toBe(1);
      expect(admission.full()).toBe(false);
    });
  });

  describe('reports that are due at once', () => {
    /** A reporter that keeps up: what the last report said is what the node has now. */
    const reportNow = (a: Admission) => (a.counters.reportedOccupancy = a.running + a.queued);

    it('asks for a report once when load reaches the threshold and once when it drops below', () => {
      // Capacity 16: a step is 2 calls, and the reporter keeps up, so only crossings ask.
      const { admission, crossings, admit } = setup(16, 4, 0.5);
      const step = (f: () => unknown) => {
        f();
        reportNow(admission);
      };
      for (let i = 0; i < 7; i++) step(() => admit(`a${i}`)); // 7/16
      expect(crossings).toEqual([]);
      step(() => admit('b')); // 8/16 = 0.5
      expect(crossings).toEqual([true]);
      for (let i = 0; i < 10; i++) step(() => admit(`c${i}`)); // 16 running, 2 queued
      expect(crossings).toEqual([true]);
      for (let i = 0; i < 10; i++) step(() => admission.release()); // back to 8
      expect(crossings).toEqual([true]);
      step(() => admission.release()); // 7/16
      expect(crossings).toEqual([true, false]);
      for (let i = 0; i < 7; i++) step(() => admission.release());
      expect(crossings).toEqual([true, false]);
    });

    it('asks again on each later crossing', () => {
      const { admission, crossings, admit } = setup(2, 2, 0.5);
      for (const f of [() => admit('a'), () => admission.release(), () => admit('b'), () => admission.release()]) {
        f();
        reportNow(admission);
      }
      expect(crossings).toEqual([true, false, true, false]);
    });

    it('asks for a report when the calls in flight moved an eighth of capacity from what the last report said', () => {
      // Capacity 16: a step is 2 calls; the threshold (0.9) is out of reach here.
      const { admission, crossings, admit } = setup(16, 0, 0.9);
      admit('a');
      expect(crossings).toHaveLength(0);
      admit('b'); // 2 more than the last report (0)
      expect(crossings).toHaveLength(1);
      reportNow(admission); // the report says 2
      admit('c');
      admission.release();
      expect(crossings).toHaveLength(1);
      admission.release();
      admission.release(); // 0: 2 fewer than the report said
      expect(crossings).toHaveLength(2);
    });
  });
});
