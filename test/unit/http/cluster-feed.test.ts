import { describe, expect, it, vi } from 'vitest';
import { PeerView, type LoadReport } from '../../../src/cluster';
import { ClusterFeed, type SelfSample } from '../../../src/http/cluster-feed';
import { fakeReport } from '../../helpers/reports';

const WALL = 1_800_000_000_000;

function report(nodeId: string, seq: number, over: Partial<LoadReport> = {}): LoadReport {
  return fakeReport({
    cluster: 'c', nodeId, endpoint: '127.0.0.2:7002', incarnation: 1, seq, sentAtMs: WALL, load: 0.25, inFlight: 1,
    services: ['bank.Banking'], periodMs: 500, httpUrl: 'http://127.0.0.2:8002', ...over,
  });
}

function setup() {
  const peers = new PeerView({ offlineAfterPeriods: 3, forgetAfterMs: 60_000 });
  const self: SelfSample = {
    id: 'n1', status: 'ONLINE', load: 0.75, running: 3, queued: 0, capacity: 4, run: 0, redirected: 0,
    httpUrl: 'http://127.0.0.1:8001', endpoint: '127.0.0.1:7001', services: ['bank.Banking'], redirects: [],
  };
  const feed = new ClusterFeed('c', peers, () => self, () => 0.5, 500);
  return { peers, self, feed };
}

describe('the cluster feed behind the page', () => {
  it('lists this node and every peer, with calls per second from the counts in their reports', () => {
    const { peers, self, feed } = setup();
    peers.apply(report('n2', 1, { callsRun: 100 }), 0);
    feed.tick(0);
    peers.apply(report('n2', 2, { callsRun: 400 }), 500);
    self.run = 50;
    const s = feed.tick(500);
    expect(s.nodes.map((n) => [n.id, n.status, n.self, n.runPerSec])).toEqual([
      ['n1', 'ONLINE', true, 100],
      ['n2', 'ONLINE', false, 600],
    ]);
    expect(s.nodes[1]).toMatchObject({ httpUrl: 'http://127.0.0.2:8002', load: 0.25, running: 1, capacity: 4 });
    expect(s.nodes[0].loads).toEqual([0.75, 0.75]);
  });

  it('shows recent redirects per source, target and reason, from the change of their counts (not what came before)', () => {
    const { peers, self, feed } = setup();
    peers.apply(report('n2', 1, { redirects: [{ toNode: 'n1', reason: 'load', count: 1000 }] }), 0);
    self.redirects = [{ toNode: 'n2', reason: 'session', count: 7 }];
    feed.tick(0);
    peers.apply(report('n2', 2, { redirects: [{ toNode: 'n1', reason: 'load', count: 1010 }] }), 1000);
    self.redirects = [{ toNode: 'n2', reason: 'session', count: 9 }];
    const s = feed.tick(1000);
    expect(s.flows).toEqual([
      { from: 'n2', to: 'n1', reason: 'load', perSec: 10, lastMinute: 10, agoMs: 0 },
      { from: 'n1', to: 'n2', reason: 'session', perSec: 2, lastMinute: 2, agoMs: 0 },
    ]);
    // A minute later they are gone.
    expect(feed.tick(62_000).flows).toEqual([]);
  });

  it('marks a silent peer off-line with no load, and keeps a peer that left for a minute as LEFT', () => {
    const { peers, feed } = setup();
    peers.apply(report('n2', 1), 0);
    peers.apply(report('n3', 1), 0);
    feed.tick(0);
    peers.apply(report('n3', 2, { status: 'LEAVING' }), 100);
    peers.sweep(2000);
    const s = feed.tick(2000);
    expect(Object.fromEntries(s.nodes.map((n) => [n.id, n.status]))).toEqual({ n1: 'ONLINE', n2: 'OFFLINE', n3: 'LEFT' });
    expect(s.nodes[1]).toMatchObject({ load: 0, runPerSec: 0, ageMs: 2000 });
    expect(s.nodes[1].loads.at(-1)).toBeNull();
    expect(feed.tick(70_000).nodes.map((n) => n.id)).toEqual(['n1', 'n2']);
  });

  it('hands each snapshot to its subscribers until they leave', () => {
    const { feed } = setup();
    const seen: number[] = [];
    const leave = feed.subscribe((s) => seen.push(s.nodes.length));
    feed.tick(0);
    leave();
    feed.tick(500);
    expect(seen).toEqual([1]);
  });

  it('samples only while someone watches, and on demand when nobody does', () => {
    vi.useFakeTimers();
    try {
      const { peers, self } = setup();
      let samples = 0;
      const feed = new ClusterFeed('c', peers, () => (samples++, self), () => 0.5, 500);
      vi.advanceTimersByTime(5_000);
      expect(samples).toBe(0);
      feed.snapshot();
      expect(samples).toBe(1);
      const leave = feed.subscribe(() => undefined);
      vi.advanceTimersByTime(1_000);
      expect(samples).toBe(3);
      // While it samples, a snapshot is the latest tick's.
      feed.snapshot();
      expect(samples).toBe(3);
      leave();
      vi.advanceTimersByTime(5_000);
      expect(samples).toBe(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it('counts redirects by tick, and not those that came while nobody watched for longer than the window', () => {
    const { peers, feed } = setup();
    const counted = (n: number) => ({ redirects: [{ toNode: 'n1', reason: 'load', count: n }] });
    peers.apply(report('n2', 1, counted(1000)), 0);
    feed.tick(0);
    peers.apply(report('n2', 2, counted(1010)), 1000);
    expect(feed.tick(1000).flows.map((f) => f.lastMinute)).toEqual([10]);
    // Two minutes without a page: where the counts stand then is not the last minute.
    peers.apply(report('n2', 3, counted(5000)), 121_000);
    const after = feed.tick(121_000);
    expect(after.flows).toEqual([]);
    // Ticks nobody sampled read as unknown in the load history, which keeps a minute.
    expect(after.nodes[0].loads).toHaveLength(120);
    expect(after.nodes[0].loads.slice(-2)).toEqual([null, 0.75]);
    peers.apply(report('n2', 4, counted(5020)), 122_000);
    expect(feed.tick(122_000).flows).toMatchObject([{ from: 'n2', to: 'n1', reason: 'load', lastMinute: 20, perSec: 20 }]);
  });

  it('keeps sampling when a page opens after a snapshot, with no new report meanwhile', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
    try {
      const { peers, feed } = setup();
      peers.apply(report('n2', 1), performance.now());
      feed.snapshot();
      let last: ReturnType<ClusterFeed['snapshot']> | undefined;
      feed.subscribe((s) => (last = s));
      vi.advanceTimersByTime(1_000);
      expect(last?.nodes.map((n) => n.id).sort()).toEqual(['n1', 'n2']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('does not show the redirects of a gap in watching as redirects of now when a page opens again', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
    try {
      const { peers, feed } = setup();
      const counted = (n: number) => ({ redirects: [{ toNode: 'n1', reason: 'load', count: n }] });
      peers.apply(report('n2', 1, counted(1000)), performance.now());
      const leave = feed.subscribe(() => undefined);
      vi.advanceTimersByTime(1_000);
      leave();
      // 40 s unwatched, 4 000 redirects meanwhile (100 a second), then a page opens.
      vi.advanceTimersByTime(40_000);
      peers.apply(report('n2', 2, counted(5000)), performance.now());
      let last: ReturnType<ClusterFeed['snapshot']> | undefined;
      feed.subscribe((s) => (last = s));
      vi.advanceTimersByTime(1_000);
      expect(last?.flows.reduce((sum, f) => sum + f.perSec, 0) ?? 0).toBe(0);
      // Redirects counted from then on show.
      peers.apply(report('n2', 3, counted(5100)), performance.now());
      vi.advanceTimersByTime(1_000);
      expect(last?.flows).toMatchObject([{ from: 'n2', to: 'n1', lastMinute: 100 }]);
    } finally {
      vi.useRealTimers();
    }
  });
});
