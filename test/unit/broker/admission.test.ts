import { describe, expect, it } from 'vitest';
import { Admission } from '../../../src/broker/admission';

/** An admission with a record of which calls started and of every threshold crossing. */
function setup(capacity = 2, maxQueue = 3, threshold = 0.5) {
  const crossings: boolean[] = [];
  const admission = new Admission(capacity, maxQueue, threshold, (above) => crossings.push(above));
  const started: string[] = [];
  const admit = (name: string) => admission.admit(() => started.push(name));
  return { admission, started, crossings, admit };
}

describe('Admission', () => {
  describe('slots and queue', () => {
    it('starts at most capacity calls at once and queues the rest', () => {
      const { admission, started, admit } = setup(2, 3);
      expect(admit('a')).toBeUndefined();
      expect(admit('b')).toBeUndefined();
      expect(admit('c')).toBeDefined();
      expect(admit('d')).toBeDefined();
      expect(started).toEqual(['a', 'b']);
      expect(admission.running).toBe(2);
      expect(admission.queued).toBe(2);
    });

    it('starts a call synchronously when a slot is free', () => {
      const { started, admit } = setup(1, 1);
      admit('a');
      expect(started).toEqual(['a']);
    });

    it('starts the next waiting call when a running one is released, in FIFO order', () => {
      const { admission, started, admit } = setup(1, 5);
      admit('a');
      admit('b');
      admit('c');
      admit('d');
      admission.release();
      expect(started).toEqual(['a', 'b']);
      admission.release();
      admission.release();
      expect(started).toEqual(['a', 'b', 'c', 'd']);
      expect(admission.running).toBe(1);
      expect(admission.queued).toBe(0);
    });

    it('marks a waiting call as started when it gets its slot', () => {
      const { admission, admit } = setup(1, 1);
      admit('a');
      const w = admit('b')!;
      expect(w.started).toBe(false);
      admission.release();
      expect(w.started).toBe(true);
    });

    it('frees the slot when the last call is released and nothing waits', () => {
      const { admission, admit } = setup(2, 2);
      admit('a');
      admission.release();
      expect(admission.running).toBe(0);
      expect(admission.queued).toBe(0);
    });

    it('keeps FIFO order over many calls, past the point where the queue compacts', () => {
      const { admission, started, admit } = setup(1, 10_000);
      admit('first');
      const names = Array.from({ length: 3000 }, (_, i) => `c${i}`);
      for (const n of names) admit(n);
      for (let i = 0; i < 3000; i++) admission.release();
      expect(started).toEqual(['first', ...names]);
      expect(admission.queued).toBe(0);
    });
  });

  describe('cancelling a waiting call', () => {
    it('never starts the cancelled call and frees its queue place', () => {
      const { admission, started, admit } = setup(1, 2);
      admit('a');
      const b = admit('b')!;
      admit('c');
      expect(admission.queued).toBe(2);
      expect(admission.full()).toBe(true);

      b.cancel();
      expect(admission.queued).toBe(1);
      expect(admission.full()).toBe(false);

      admission.release();
      admission.release();
      expect(started).toEqual(['a', 'c']);
      expect(admission.running).toBe(0);
    });

    it('counts a call cancelled twice only once', () => {
      const { admission, admit } = setup(1, 3);
      admit('a');
      const b = admit('b')!;
      admit('c');
      b.cancel();
      b.cancel();
      expect(admission.queued).toBe(1);
    });

    it('does nothing when the call has already started', () => {
      const { admission, admit } = setup(1, 3);
      admit('a');
      const b = admit('b')!;
      admission.release();
      b.cancel();
      expect(b.cancelled).toBe(false);
      expect(admission.running).toBe(1);
      expect(admission.queued).toBe(0);
    });

    it('leaves the slot free when every waiting call was cancelled', () => {
      const { admission, started, admit } = setup(1, 3);
      admit('a');
      admit('b')!.cancel();
      admit('c')!.cancel();
      admission.release();
      expect(started).toEqual(['a']);
      expect(admission.running).toBe(0);
      expect(admission.queued).toBe(0);
      admit('d');
      expect(started).toEqual(['a', 'd']);
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
      const { admission, admit } = setup(2, 4);
      admit('a');
      admit('b');
      admit('c')!.cancel();
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
      expect(admission.full()).toBe(false); // d started, queue has room again
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

  describe('threshold crossings', () => {
    it('calls onCross(true) once when load reaches the threshold and onCross(false) once when it drops below', () => {
      const { admission, crossings, admit } = setup(4, 4, 0.5);
      admit('a'); // 0.25
      expect(crossings).toEqual([]);
      admit('b'); // 0.5
      expect(crossings).toEqual([true]);
      admit('c'); // 0.75
      admit('d'); // 1
      admit('e'); // queued, still 1
      expect(crossings).toEqual([true]);
      admission.release(); // e starts: 1
      admission.release(); // 0.75
      admission.release(); // 0.5
      expect(crossings).toEqual([true]);
      admission.release(); // 0.25
      expect(crossings).toEqual([true, false]);
      admission.release(); // 0
      expect(crossings).toEqual([true, false]);
    });

    it('fires again on each later crossing', () => {
      const { admission, crossings, admit } = setup(2, 2, 0.5);
      admit('a');
      admission.release();
      admit('b');
      admission.release();
      expect(crossings).toEqual([true, false, true, false]);
    });
  });
});
