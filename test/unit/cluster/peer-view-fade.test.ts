import { describe, expect, it } from 'vitest';
import { PeerView } from '../../../src/cluster/peer-view';
import type { LoadReport } from '../../../src/cluster/report-codec';
import { fakeReport } from '../../helpers/reports';

// PeerView.fadeExtras: the calls this node redirected to a peer are counted against the
// peer's load, and fade as they are expected to finish (mean call time tau).

const WALL = 1_732_590_000_000;
const TAU = 100;

function report(seq: number): LoadReport {
  return fakeReport({
    cluster: 'prod', nodeId: 'n2', endpoint: '127.0.0.2:7002', incarnation: WALL - 60_000, seq, sentAtMs: WALL,
    load: 0.3, inFlight: 3, capacity: 10, services: ['bank.Banking'], periodMs: 500,
  });
}

/** A view with peer n2 (capacity 10) reported at t=1000; one redirect is 0.1 of its load. */
function setup() {
  const view = new PeerView({ cluster: 'prod', selfId: 'n1', offlineAfterPeriods: 3, forgetAfterMs: 60_000, maxClockSkewMs: 30_000 });
  view.apply(report(1), 'n2', 1000, WALL);
  return { view, p: view.get('n2')! };
}

describe('PeerView.fadeExtras', () => {
  it('fades the redirects counted against a peer by e^(-elapsed / tau)', () => {
    const { view, p } = setup();
    view.account(p, 1000, TAU);
    view.account(p, 1000, TAU);
    expect(p.extra).toBeCloseTo(0.2, 12);
    view.fadeExtras(1000 + TAU, TAU);
    expect(p.extra).toBeCloseTo(0.2 * Math.exp(-1), 12);
    view.fadeExtras(1000 + 3 * TAU, TAU);
    expect(p.extra).toBeCloseTo(0.2 * Math.exp(-3), 12);
  });

  it('gives the same result faded in many small steps or one large one', () => {
    const a = setup();
    const b = setup();
    a.view.account(a.p, 1000, TAU);
    b.view.account(b.p, 1000, TAU);
    for (let t = 1010; t <= 1200; t += 10) a.view.fadeExtras(t, TAU);
    b.view.fadeExtras(1200, TAU);
    expect(a.p.extra).toBeCloseTo(b.p.extra, 12);
  });

  it('drops the count to exactly 0 once it has all but faded', () => {
    const { view, p } = setup();
    view.account(p, 1000, TAU);
    view.fadeExtras(1000 + 20 * TAU, TAU);
    expect(p.extra).toBe(0);
  });

  it('changes nothing while no time passed, or when calls are not timed yet (tau infinite)', () => {
    const { view, p } = setup();
    view.account(p, 1000, TAU);
    view.fadeExtras(1000, TAU);
    expect(p.extra).toBeCloseTo(0.1, 12);
    view.fadeExtras(5000, Infinity);
    expect(p.extra).toBeCloseTo(0.1, 12);
  });

  it('counts only the change since the last report, which already saw the calls sent before it', () => {
    const { view, p } = setup();
    view.account(p, 1000, TAU);
    view.account(p, 1000, TAU);
    view.apply(report(2), 'n2', 1000, WALL);
    expect(p.extra).toBe(0);
    // Calls the report counted finish: the peer is now less loaded than it said.
    view.fadeExtras(1000 + TAU, TAU);
    expect(p.extra).toBeCloseTo(0.2 * Math.exp(-1) - 0.2, 12);
    expect(p.extra).toBeLessThan(0);
  });

  it('leaves peers nothing was redirected to alone', () => {
    const { view, p } = setup();
    view.apply({ ...report(1), nodeId: 'n3', endpoint: '127.0.0.3:7003', endpoints: ['127.0.0.3:7003'] }, 'n3', 1000, WALL);
    const other = view.get('n3')!;
    view.account(p, 1000, TAU);
    view.fadeExtras(1000 + TAU, TAU);
    expect(other.extra).toBe(0);
    expect(p.extra).toBeGreaterThan(0);
  });
});
