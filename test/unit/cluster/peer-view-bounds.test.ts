import { describe, expect, it } from 'vitest';
import { PeerView, type PeerViewOptions } from '../../../src/cluster/peer-view';
import type { LoadReport } from '../../../src/cluster/report-codec';
import { fakeReport } from '../../helpers/reports';

const WALL = 1_732_590_000_000;
const PERIOD = 500;

function view(opts: Partial<PeerViewOptions> = {}): PeerView {
  return new PeerView({ offlineAfterPeriods: 3, forgetAfterMs: 60_000, ...opts });
}

function report(nodeId: string, over: Partial<LoadReport> = {}): LoadReport {
  return fakeReport({ cluster: 'prod', nodeId, endpoint: '127.0.0.2:7002', incarnation: WALL - 60_000, sentAtMs: WALL, periodMs: PERIOD, ...over });
}

/** The peers array and the lookup by id agree (what an O(1) removal must keep true). */
function consistent(v: PeerView): boolean {
  const ids = v.peers.map((p) => p.nodeId);
  return new Set(ids).size === ids.length && ids.every((id) => v.get(id)?.nodeId === id);
}

describe('PeerView bounds', () => {
  it('drops new ids past maxPeers as peer-limit and leaves the known peers as they were', () => {
    const v = view({ maxPeers: 3 });
    for (const id of ['a', 'b', 'c']) v.apply(report(id), 1000);
    expect(v.apply(report('d'), 1000)).toBe('peer-limit');
    expect(v.dropped['peer-limit']).toBe(1);
    expect(v.peers.map((p) => p.nodeId)).toEqual(['a', 'b', 'c']);
    expect(v.apply(report('a', { seq: 2, load: 0.9 }), 1100)).toBeUndefined();
    expect(v.get('a')?.load).toBe(0.9);
  });

  it('gives the place of the peer off-line longest to a new id when the table is full', () => {
    const v = view({ maxPeers: 3 });
    v.apply(report('a'), 1000);
    v.apply(report('b'), 1200);
    v.apply(report('c'), 5000);
    v.sweep(1000 + 3 * PERIOD + 1); // a off-line
    v.sweep(1200 + 3 * PERIOD + 1); // b off-line
    expect(v.apply(report('d'), 3000)).toBeUndefined();
    expect(v.peers.map((p) => p.nodeId).sort()).toEqual(['b', 'c', 'd']);
    // A replay of the evicted peer's report cannot bring it back.
    expect(v.apply(report('a'), 3000)).toBe('replay');
    expect(consistent(v)).toBe(true);
  });

  it('removes any number of peers in any order and keeps the table consistent', () => {
    const v = view();
    for (let i = 0; i < 500; i++) v.apply(report(`p${i}`), 1000 + (i % 7) * 100);
    for (let i = 0; i < 500; i += 3) v.apply(report(`p${i}`, { seq: 2, status: 'LEAVING' }), 2000);
    expect(consistent(v)).toBe(true);
    v.sweep(1000 + 3 * PERIOD + 350); // those heard at 1000-1300 go off-line
    v.sweep(1000 + 60_000 + 3 * PERIOD + 1_000); // and are forgotten; the rest go off-line
    expect(consistent(v)).toBe(true);
    v.sweep(200_000);
    expect(v.peers).toEqual([]);
  });

  it('keeps at most 4 × maxPeers tombstones, the oldest forgotten first', () => {
    const v = view({ maxPeers: 2 });
    for (let i = 0; i < 20; i++) v.apply(report(`l${i}`, { status: 'LEAVING' }), 1000 + i);
    const tombstones = (v as unknown as { tombstones: Map<string, unknown> }).tombstones;
    expect([...tombstones.keys()]).toEqual(['l12', 'l13', 'l14', 'l15', 'l16', 'l17', 'l18', 'l19']);
  });

  it('does not judge silence while its subject is flooded, nor when told it could not listen', () => {
    const v = view();
    v.apply(report('a'), 1000);
    v.flooded('a', 2000);
    v.sweep(1000 + 3 * PERIOD + 1);
    expect(v.get('a')?.status).toBe('ONLINE');
    v.sweep(2000 + 3 * PERIOD + 1, false);
    expect(v.get('a')?.status).toBe('ONLINE');
    v.sweep(2000 + 3 * PERIOD + 1);
    expect(v.get('a')?.status).toBe('OFFLINE');
  });

  it('counts the reports of the current on-line run, from its start', () => {
    const v = view();
    v.apply(report('a', { seq: 1 }), 1000);
    v.apply(report('a', { seq: 2 }), 1500);
    expect(v.get('a')).toMatchObject({ onlineSince: 1000, reportsSinceOnline: 2 });
    v.apply(report('a', { seq: 1, incarnation: WALL }), 1600);
    expect(v.get('a')).toMatchObject({ onlineSince: 1600, reportsSinceOnline: 1 });
  });
});
