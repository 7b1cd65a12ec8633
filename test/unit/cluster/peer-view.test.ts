import { describe, expect, it } from 'vitest';
import { PeerView, type PeerViewOptions } from '../../../src/cluster/peer-view';
import { leastLoadedAccounted } from '../../../src/policy';
import type { DropReason, LoadReport } from '../../../src/cluster/report-codec';

const WALL = 1_732_590_000_000;
const PERIOD = 500;

const options: PeerViewOptions = {
  offlineAfterPeriods: 3,
  forgetAfterMs: 60_000,
};

function report(over: Partial<LoadReport> = {}): LoadReport {
  return {
    cluster: 'prod',
    nodeId: 'n2',
    endpoint: '127.0.0.2:7002',
    incarnation: WALL - 60_000,
    seq: 1,
    sentAtMs: WALL,
    load: 0.3,
    inFlight: 19,
    capacity: 64,
    status: 'ONLINE',
    services: ['bank.Banking'],
    endpoints: ['127.0.0.2:7002'],
    periodMs: PERIOD,
    queued: 0,
    loopDelayMs: 1.5,
    callsRun: 100,
    callsRedirected: 4,
    maxQueue: 256,
    ...over,
  };
}

/** A view plus a log of every event it emitted, in order. */
function setup(opts: Partial<PeerViewOptions> = {}) {
  const view = new PeerView({ ...options, ...opts });
  const events: string[] = [];
  view.on('online', (p) => events.push(`online ${p.nodeId}`));
  view.on('offline', (p) => events.push(`offline ${p.nodeId}`));
  view.on('left', (p) => events.push(`left ${p.nodeId}`));
  view.on('dropped', (reason, id) => events.push(`dropped ${reason} ${id}`));
  return { view, events };
}

function totalDropped(view: PeerView): number {
  return Object.values(view.dropped).reduce((a, b) => a + b, 0);
}

describe('PeerView', () => {
  describe('a first report from a peer', () => {
    it('adds the peer with what its report said and emits online', () => {
      const { view, events } = setup();
      expect(view.apply(report(), 1000)).toBeUndefined();
      expect(events).toEqual(['online n2']);
      const p = view.get('n2')!;
      expect(view.peers).toEqual([p]);
      expect(p).toMatchObject({
        nodeId: 'n2',
        endpoint: '127.0.0.2:7002',
        status: 'ONLINE',
        load: 0.3,
        extra: 0,
        capacity: 64,
        receivedAt: 1000,
        periodMs: PERIOD,
        seq: 1,
      });
      expect([...p.services]).toEqual(['bank.Banking']);
    });

    it('emits online only once while the peer keeps reporting', () => {
      const { view, events } = setup();
      view.apply(report({ seq: 1 }), 1000);
      view.apply(report({ seq: 2, load: 0.4 }), 1500);
      view.apply(report({ seq: 3, load: 0.5 }), 2000);
      expect(events).toEqual(['online n2']);
      expect(view.get('n2')!.load).toBe(0.5);
      expect(view.peers).toHaveLength(1);
    });

    it('updates the peers array in place, so a holder of it sees the change', () => {
      const { view } = setup();
      const held = view.peers;
      view.apply(report(), 1000);
      view.apply(report({ nodeId: 'n3', endpoint: '127.0.0.3:7003' }), 1000);
      expect(held).toBe(view.peers);
      expect(held.map((p) => p.nodeId)).toEqual(['n2', 'n3']);
    });
  });

  // Cluster, subject, own id, clock skew and age are checked on the reporter thread
  // (report-filter.test.ts); the view checks what needs its memory.
  describe('reports that are dropped', () => {
    const cases: Array<[string, DropReason, LoadReport]> = [
      ['from an older incarnation', 'old-incarnation', report({ incarnation: WALL - 120_000, seq: 9, load: 0.9 })],
      ['replayed (same seq)', 'replay', report({ seq: 5, load: 0.9 })],
      ['older (lower seq)', 'replay', report({ seq: 4, load: 0.9 })],
    ];

    it.each(cases)('a report %s is dropped as %s, counted, and changes nothing', (_what, reason, r) => {
      const { view, events } = setup();
      view.apply(report({ seq: 5, load: 0.3 }), 1000);
      const before = { ...view.get('n2')! };
      events.length = 0;

      expect(view.apply(r, 2000)).toBe(reason);

      expect(view.dropped[reason]).toBe(1);
      expect(totalDropped(view)).toBe(1);
      expect(events).toEqual([`dropped ${reason} ${r.nodeId}`]);
      expect(view.get('n2')).toEqual(before);
      expect(view.get('n2')!.load).toBe(0.3);
      expect(view.peers).toHaveLength(1);
    });

    it('drops a replay of a peer that left (its tombstone), which the reporter thread may not remember', () => {
      const { view, events } = setup();
      view.apply(report({ seq: 5 }), 1000);
      view.apply(report({ seq: 6, status: 'LEAVING' }), 1100);
      events.length = 0;
      expect(view.apply(report({ seq: 5 }), 1200)).toBe('replay');
      expect(view.get('n2')).toBeUndefined();
      expect(events).toEqual(['dropped replay n2']);
    });

    it('counts each drop reason separately', () => {
      const { view } = setup();
      view.apply(report({ seq: 5 }), 1000);
      view.apply(report({ seq: 5 }), 1100);
      view.apply(report({ seq: 3 }), 1200);
      view.apply(report({ seq: 9, incarnation: 1 }), 1300);
      view.drop('malformed');
      expect(view.dropped).toMatchObject({ replay: 2, 'old-incarnation': 1, malformed: 1, future: 0 });
    });
  });

  describe('incarnations', () => {
    it('lets a newer incarnation replace an older one even with a lower seq', () => {
      const { view, events } = setup();
      view.apply(report({ incarnation: 1000, seq: 500, load: 0.9 }), 1000);
      expect(view.apply(report({ incarnation: 2000, seq: 1, load: 0.1 }), 1500)).toBeUndefined();
      const p = view.get('n2')!;
      expect(p).toMatchObject({ incarnation: 2000, seq: 1, load: 0.1 });
      expect(view.peers).toHaveLength(1);
      // A restart seen before the peer went off-line is not a new arrival.
      expect(events).toEqual(['online n2']);
    });

    it('then drops the old incarnation, whatever its seq', () => {
      const { view } = setup();
      view.apply(report({ incarnation: 1000, seq: 500 }), 1000);
      view.apply(report({ incarnation: 2000, seq: 1 }), 1500);
      expect(view.apply(report({ incarnation: 1000, seq: 501, load: 0.99 }), 1600)).toBe('old-incarnation');
      expect(view.get('n2')!.incarnation).toBe(2000);
    });
  });

  describe('a peer that leaves', () => {
    it('is removed at once on a LEAVING report and left is emitted', () => {
      const { view, events } = setup();
      view.apply(report({ seq: 1 }), 1000);
      const p = view.get('n2')!;
      expect(view.apply(report({ seq: 2, status: 'LEAVING' }), 1500)).toBeUndefined();
      expect(view.get('n2')).toBeUndefined();
      expect(view.peers).toHaveLength(0);
      expect(events).toEqual(['online n2', 'left n2']);
      expect(events.filter((e) => e.startsWith('left'))).toHaveLength(1);
      expect(p.nodeId).toBe('n2');
    });

    it('is not brought back by a replay of an earlier ONLINE report of the same incarnation', () => {
      const { view, events } = setup();
      const online = report({ seq: 1 });
      view.apply(online, 1000);
      view.apply(report({ seq: 2, status: 'LEAVING' }), 1500);
      events.length = 0;

      expect(view.apply(online, 2000)).toBe('replay');
      expect(view.get('n2')).toBeUndefined();
      expect(view.peers).toHaveLength(0);
      expect(events).toEqual(['dropped replay n2']);
    });

    it('is not added by a LEAVING report from a peer never seen, and a replay of its older report is still dropped', () => {
      const { view, events } = setup();
      view.apply(report({ seq: 7, status: 'LEAVING' }), 1000);
      expect(view.peers).toHaveLength(0);
      expect(events).toEqual([]);
      expect(view.apply(report({ seq: 6 }), 1100)).toBe('replay');
      expect(view.peers).toHaveLength(0);
    });

    it('comes back when it restarts with a newer incarnation', () => {
      const { view, events } = setup();
      view.apply(report({ incarnation: 1000, seq: 1 }), 1000);
      view.apply(report({ incarnation: 1000, seq: 2, status: 'LEAVING' }), 1500);
      expect(view.apply(report({ incarnation: 3000, seq: 1 }), 5000)).toBeUndefined();
      expect(view.get('n2')!.status).toBe('ONLINE');
      expect(events).toEqual(['online n2', 'left n2', 'online n2']);
    });
  });

  describe('sweep', () => {
    it('leaves a peer online while it is silent for at most offlineAfterPeriods periods', () => {
      const { view, events } = setup();
      view.apply(report(), 1000);
      view.sweep(1000 + 3 * PERIOD);
      expect(view.get('n2')!.status).toBe('ONLINE');
      expect(events).toEqual(['online n2']);
    });

    it('marks a peer silent for more than offlineAfterPeriods periods OFFLINE and emits offline exactly once', () => {
      const { view, events } = setup();
      view.apply(report(), 1000);
      view.sweep(1000 + 3 * PERIOD + 1);
      view.sweep(1000 + 4 * PERIOD);
      view.sweep(1000 + 10 * PERIOD);
      const p = view.get('n2')!;
      expect(p.status).toBe('OFFLINE');
      expect(p.offlineSince).toBe(1000 + 3 * PERIOD + 1);
      expect(events).toEqual(['online n2', 'offline n2']);
    });

    it("uses the peer's own period to judge silence", () => {
      const { view } = setup();
      view.apply(report({ periodMs: 2000 }), 1000);
      view.sweep(1000 + 3 * PERIOD + 1);
      expect(view.get('n2')!.status).toBe('ONLINE');
      view.sweep(1000 + 3 * 2000 + 1);
      expect(view.get('n2')!.status).toBe('OFFLINE');
    });

    it('brings an OFFLINE peer back ONLINE on its next report and emits online', () => {
      const { view, events } = setup();
      view.apply(report({ seq: 1 }), 1000);
      view.sweep(5000);
      expect(view.apply(report({ seq: 2, load: 0.7 }), 6000)).toBeUndefined();
      const p = view.get('n2')!;
      expect(p).toMatchObject({ status: 'ONLINE', load: 0.7, offlineSince: 0, receivedAt: 6000 });
      expect(events).toEqual(['online n2', 'offline n2', 'online n2']);
      expect(view.peers).toHaveLength(1);
    });

    it('forgets a peer that stayed OFFLINE longer than forgetAfterMs', () => {
      const { view } = setup();
      view.apply(report(), 1000);
      view.sweep(3000);
      view.sweep(3000 + 60_000);
      expect(view.get('n2')).toBeDefined();
      view.sweep(3000 + 60_001);
      expect(view.get('n2')).toBeUndefined();
      expect(view.peers).toHaveLength(0);
    });
  });

  describe('local accounting', () => {
    it('adds 1/capacity to extra for every redirect sent to the peer', () => {
      const { view } = setup();
      view.apply(report({ capacity: 8 }), 1000);
      const p = view.get('n2')!;
      view.account(p, 1000, Infinity);
      expect(p.extra).toBe(1 / 8);
      view.account(p, 1000, Infinity);
      view.account(p, 1000, Infinity);
      expect(p.extra).toBe(3 / 8);
    });

    it('resets extra to 0 when the next report arrives', () => {
      const { view } = setup();
      view.apply(report({ seq: 1 }), 1000);
      const p = view.get('n2')!;
      view.account(p, 1000, Infinity);
      view.account(p, 1000, Infinity);
      view.apply(report({ seq: 2 }), 1500);
      expect(p.extra).toBe(0);
    });

    it('counts, after a report, only the redirects since: the flow faded to the report, not as it was', () => {
      // A burst of 4 redirects at t=1000 (mean call time 50 ms), then 2 s of quiet: those calls
      // ended long ago. The peer then reports 0.9; it must read 0.9, not 0.9 minus the old burst.
      const { view } = setup();
      view.apply(report({ seq: 1, capacity: 8, load: 0.1, inFlight: 1 }), 1000);
      const p = view.get('n2')!;
      for (let i = 0; i < 4; i++) view.account(p, 1000, 50);
      view.apply(report({ seq: 2, capacity: 8, load: 0.9, inFlight: 7, queued: 0 }), 3000);
      view.fadeExtras(3010, 50);
      expect(leastLoadedAccounted.loadOf(p)).toBeCloseTo(0.9, 3);
    });

    it('keeps extra when a dropped report arrives', () => {
      const { view } = setup();
      view.apply(report({ seq: 2 }), 1000);
      const p = view.get('n2')!;
      view.account(p, 1000, Infinity);
      view.apply(report({ seq: 1 }), 1500);
      expect(p.extra).toBe(1 / 64);
    });
  });

  describe('displayStatus', () => {
    it('shows the reported status while reports are at most two periods old', () => {
      const { view } = setup();
      view.apply(report({ status: 'DRAINING' }), 1000);
      expect(view.displayStatus(view.get('n2')!, 1000 + 2 * PERIOD)).toBe('DRAINING');
    });

    it('says UNKNOWN after more than two periods without a report', () => {
      const { view } = setup();
      view.apply(report(), 1000);
      expect(view.displayStatus(view.get('n2')!, 1000 + 2 * PERIOD + 1)).toBe('UNKNOWN');
    });

    it('says OFFLINE, not UNKNOWN, once the sweep marked the peer off-line', () => {
      const { view } = setup();
      view.apply(report(), 1000);
      view.sweep(1000 + 3 * PERIOD + 1);
      expect(view.displayStatus(view.get('n2')!, 1000 + 10 * PERIOD)).toBe('OFFLINE');
    });
  });
});
