import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PeerSweep, urgentGapMs } from '../../../src/broker/control-timers';
import { PeriodicTimer } from '../../../src/timers';
import { PeerView } from '../../../src/cluster/peer-view';
import type { LoadReport } from '../../../src/cluster/report-codec';
import { createLogger } from '../../../src/log';
import { fakeReport } from '../../helpers/reports';

const PERIOD = 100;

function report(seq: number): LoadReport {
  return fakeReport({ cluster: 'c', nodeId: 'p', endpoint: '127.0.0.2:1', incarnation: 1, seq, periodMs: PERIOD });
}

/**
 * Moves the fake clock on by `ms` without running a timer meanwhile, as a blocked event loop
 * does: timers that fell due meanwhile run once, late, at the end. vi has no such call;
 * @sinonjs/fake-timers, behind vi.useFakeTimers(), hangs its clock (with `jump`) on every
 * function it fakes.
 */
function stall(ms: number): void {
  const clock = (setTimeout as unknown as { clock?: { jump(ms: number): void } }).clock;
  if (!clock) throw new Error('stall() needs vi.useFakeTimers()');
  clock.jump(ms);
}

function sweepOf(view: PeerView): PeerSweep {
  const sweep = new PeerSweep(view, () => PERIOD, () => {}, createLogger({ level: 'silent' }));
  stops.push(() => sweep.stop());
  return sweep;
}

function newView(): PeerView {
  return new PeerView({ offlineAfterPeriods: 3, forgetAfterMs: 60_000 });
}

const stops: Array<() => void> = [];
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
});
afterEach(() => {
  stops.splice(0).forEach((s) => s());
  vi.useRealTimers();
});

describe('PeriodicTimer', () => {
  it('takes a new interval at once when rescheduled', () => {
    let every = 10_000;
    let ticks = 0;
    const t = new PeriodicTimer(() => every, () => ticks++);
    stops.push(() => t.stop());
    t.start();
    every = 10;
    t.reschedule();
    vi.advanceTimersByTime(30);
    expect(ticks).toBe(3);
  });

  it('keeps one chain of ticks when its own tick reschedules it, and none after stop', () => {
    let ticks = 0;
    const t = new PeriodicTimer(
      () => 10,
      () => {
        ticks++;
        t.reschedule();
      },
    );
    t.start();
    vi.advanceTimersByTime(50);
    expect(ticks).toBe(5);
    t.stop();
    vi.advanceTimersByTime(50);
    expect(ticks).toBe(5);
  });
});

describe('PeerSweep', () => {
  it('judges nobody right after its loop was stalled: the reports that arrived meanwhile are read first', () => {
    const view = newView();
    const wentOffline: number[] = [];
    view.on('offline', () => wentOffline.push(performance.now()));
    const sweep = sweepOf(view);
    let seq = 0;
    view.apply(report(++seq), performance.now());
    sweep.start();
    vi.advanceTimersByTime(PERIOD);
    // Stalled for 5 periods: the sweep's tick runs that late, before the peer's report that
    // "arrived" meanwhile is read.
    stall(5 * PERIOD);
    view.apply(report(++seq), performance.now());
    vi.advanceTimersByTime(PERIOD / 2);
    expect(wentOffline).toEqual([]);
    expect(view.get('p')?.status).toBe('ONLINE');
    // A peer that stays silent is judged once the hold is over: 3 periods after its report.
    const heardAt = performance.now() - PERIOD / 2;
    vi.advanceTimersByTime(4 * PERIOD);
    expect(view.get('p')?.status).toBe('OFFLINE');
    expect(wentOffline).toHaveLength(1);
    expect(wentOffline[0] - heardAt).toBeGreaterThan(3 * PERIOD);
  });

  it('holds its judgement for a period when the reporter says it could not read', () => {
    const view = newView();
    const sweep = sweepOf(view);
    view.apply(report(1), performance.now() - 3 * PERIOD - 1);
    sweep.reporterStalled(4 * PERIOD);
    sweep.start();
    vi.advanceTimersByTime(PERIOD * 0.8);
    expect(view.get('p')?.status).toBe('ONLINE');
    vi.advanceTimersByTime(PERIOD);
    expect(view.get('p')?.status).toBe('OFFLINE');
  });
});

describe('urgentGapMs', () => {
  it('is a fiftieth of the period, 10 ms at least, and 1 ms per peer', () => {
    expect([100, 500, 2_000, 60_000].map((p) => urgentGapMs(p, 2))).toEqual([10, 10, 40, 1_200]);
    expect(urgentGapMs(500, 300)).toBe(300);
  });
});
