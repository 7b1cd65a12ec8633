import { afterEach, describe, expect, it } from 'vitest';
import { PeerSweep } from '../../../src/broker/control-timers';
import { PeriodicTimer } from '../../../src/timers';
import { PeerView } from '../../../src/cluster/peer-view';
import type { LoadReport } from '../../../src/cluster/report-codec';
import { createLogger } from '../../../src/log';
import { sleep, waitFor } from '../../helpers/brokers';
import { fakeReport } from '../../helpers/reports';

const PERIOD = 100;

function report(seq: number): LoadReport {
  return fakeReport({ cluster: 'c', nodeId: 'p', endpoint: '127.0.0.2:1', incarnation: 1, seq, periodMs: PERIOD });
}

/** Blocks this thread's event loop, as a handler stuck in CPU work would. */
function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

const stops: Array<() => void> = [];
afterEach(() => stops.splice(0).forEach((s) => s()));

describe('PeriodicTimer', () => {
  it('takes a new interval at once when rescheduled', async () => {
    let every = 10_000;
    let ticks = 0;
    const t = new PeriodicTimer(() => every, () => ticks++);
    stops.push(() => t.stop());
    t.start();
    every = 10;
    t.reschedule();
    await waitFor(() => ticks >= 3, 2_000, 5, 'three ticks at the new interval');
  });
});

describe('PeerSweep', () => {
  it('judges nobody right after its loop was stalled: the reports that arrived meanwhile are read first', async () => {
    const view = new PeerView({ offlineAfterPeriods: 3, forgetAfterMs: 60_000 });
    const sweep = new PeerSweep(view, () => PERIOD, () => {}, createLogger({ level: 'silent' }));
    stops.push(() => sweep.stop());
    let seq = 0;
    view.apply(report(++seq), performance.now());
    sweep.start();
    await sleep(PERIOD);
    // Stalled for 5 periods; the peer's report "arrived" meanwhile and is read only now.
    block(5 * PERIOD);
    setImmediate(() => view.apply(report(++seq), performance.now()));
    await sleep(PERIOD / 2);
    expect(view.get('p')?.status).toBe('ONLINE');
    // A peer that stays silent is judged once the hold is over.
    await waitFor(() => view.get('p')?.status === 'OFFLINE', 3_000, 10, 'the silent peer off-line');
  });

  it('holds its judgement for a period when the reporter says it could not read', async () => {
    const view = new PeerView({ offlineAfterPeriods: 3, forgetAfterMs: 60_000 });
    const sweep = new PeerSweep(view, () => PERIOD, () => {}, createLogger({ level: 'silent' }));
    stops.push(() => sweep.stop());
    view.apply(report(1), performance.now() - 3 * PERIOD - 1);
    sweep.reporterStalled(4 * PERIOD);
    sweep.start();
    await sleep(PERIOD * 0.8);
    expect(view.get('p')?.status).toBe('ONLINE');
    await waitFor(() => view.get('p')?.status === 'OFFLINE', 2_000, 10, 'the silent peer off-line');
  });
});
