import { describe, expect, it } from 'vitest';
import { PeerView, RECENT_REDIRECTS } from '../../../src/cluster/peer-view';
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
  const view = new PeerView({ offlineAfterPeriods: 3, forgetAfterMs: 60_000 });
  view.apply(report(1), 1000);
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
    view.apply(report(2), 1000);
    expect(p.extra).toBe(0);
    // Calls the report counted finish: the peer is now less loaded than it said.
    view.fadeExtras(1000 + TAU, TAU);
    expect(p.extra).toBeCloseTo(0.2 * Math.exp(-1) - 0.2, 12);
    expect(p.extra).toBeLessThan(0);
  });

  it('keeps counting the calls sent after the report was read, while it waited for the hand-over', () => {
    const { view, p } = setup();
    view.account(p, 1000, TAU); // before the report was read: the report counted it
    view.account(p, 1020, TAU); // after: not in it
    view.account(p, 1022, TAU);
    // Read on the reporter thread at 1010, handed to the main thread at 1025.
    view.apply(report(2), 1025, 1010);
    expect(p.extra).toBeCloseTo(0.1 * Math.exp(-5 / TAU) + 0.1 * Math.exp(-3 / TAU), 12);
    expect(p.occupancy + p.extra).toBeGreaterThan(0.49);
    // They fade as any other, and the call the report counted finishing lowers the estimate.
    view.fadeExtras(1025 + TAU, TAU);
    const all = 0.1 * Math.exp(-(1125 - 1000) / TAU) + 0.1 * Math.exp(-(1125 - 1020) / TAU) + 0.1 * Math.exp(-(1125 - 1022) / TAU);
    expect(p.extra).toBeCloseTo(all - 0.1 * Math.exp(-25 / TAU), 12);
  });

  it('counts a report read and applied at once as seeing every call sent before it', () => {
    const { view, p } = setup();
    view.account(p, 1020, TAU);
    view.apply(report(2), 1025, 1025);
    expect(p.extra).toBe(0);
  });

  it(`remembers the last ${RECENT_REDIRECTS} redirects per peer, the newest`, () => {
    const { view, p } = setup();
    for (let i = 0; i < RECENT_REDIRECTS; i++) view.account(p, 1005, Infinity);
    for (let i = 0; i < 8; i++) view.account(p, 1020, Infinity);
    view.apply(report(2), 1025, 1010);
    expect(p.extra).toBeCloseTo(0.8, 9);
  });

  it(`counts at most the last ${RECENT_REDIRECTS} as sent after the read: the older ones as in the report`, () => {
    const { view, p } = setup();
    for (let i = 0; i < RECENT_REDIRECTS + 8; i++) view.account(p, 1020, Infinity);
    view.apply(report(2), 1025, 1010);
    expect(p.extra).toBeCloseTo(RECENT_REDIRECTS * 0.1, 9);
  });

  it('leaves peers nothing was redirected to alone', () => {
    const { view, p } = setup();
    view.apply({ ...report(1), nodeId: 'n3', endpoint: '127.0.0.3:7003', endpoints: ['127.0.0.3:7003'] }, 1000);
    const other = view.get('n3')!;
    view.account(p, 1000, TAU);
    view.fadeExtras(1000 + TAU, TAU);
    expect(other.extra).toBe(0);
    expect(p.extra).toBeGreaterThan(0);
  });

  it('skips a pass within a hundredth of tau of the last one (the flows moved by under 1 %), and fades on the next', () => {
    const { view, p } = setup();
    view.account(p, 1000, TAU);
    view.fadeExtras(1000 + TAU, TAU);
    const faded = p.extra;
    view.fadeExtras(1000 + TAU + 0.5, TAU);
    expect(p.extra).toBe(faded);
    view.fadeExtras(1000 + TAU + 1, TAU);
    expect(p.extra).toBeCloseTo(0.1 * Math.exp(-1.01), 12);
  });

  it('fades the peer a redirect goes to up to its time, whether or not a pass ran just before', () => {
    const a = setup();
    const b = setup();
    a.view.account(a.p, 1000, TAU);
    b.view.account(b.p, 1000, TAU);
    a.view.fadeExtras(1000 + TAU, TAU);
    a.view.account(a.p, 1000 + TAU, TAU);
    b.view.account(b.p, 1000 + TAU, TAU);
    expect(a.p.extra).toBeCloseTo(0.1 * Math.exp(-1) + 0.1, 12);
    expect(b.p.extra).toBeCloseTo(a.p.extra, 12);
  });

  it('passes only over the peers with a live flow: one that died out, or was forgotten, leaves the list', () => {
    const { view, p } = setup();
    const flows = () => (view as unknown as { flows: unknown[] }).flows;
    view.account(p, 1000, TAU);
    expect(flows()).toEqual([p]);
    view.fadeExtras(1000 + 20 * TAU, TAU);
    expect(flows()).toEqual([]);
    view.account(p, 5000, TAU);
    view.account(p, 5000, TAU);
    expect(flows()).toEqual([p]);
    view.apply({ ...report(2), status: 'LEAVING' }, 5000);
    expect(flows()).toEqual([]);
  });
});
