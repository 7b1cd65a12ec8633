import { describe, expect, it } from 'vitest';
import { ReportIntake } from '../../../src/broker/report-intake';
import { PeerView } from '../../../src/cluster/peer-view';
import { readClock } from '../../../src/cluster/report-filter';
import { createLogger, RateLimitedLog } from '../../../src/log';
import { fakeReport } from '../../helpers/reports';

// ReportIntake hands the reporter thread's batch to the peer view: a report read a while
// before the batch arrived does not hold the calls this node sent the peer since.

const report = (seq: number) =>
  fakeReport({ cluster: 'c', nodeId: 'n2', endpoint: '127.0.0.2:7002', incarnation: 1, seq, load: 0.25, inFlight: 1, capacity: 4 });

function setup() {
  const peers = new PeerView({ offlineAfterPeriods: 3, forgetAfterMs: 60_000 });
  const intake = new ReportIntake('c', peers, createLogger({ level: 'silent' }), new RateLimitedLog(10_000));
  intake.receive({ reports: [report(1)], drops: {}, flooded: [] });
  return { peers, intake, p: peers.get('n2')! };
}

describe('ReportIntake', () => {
  it('keeps counting a redirect sent after the report was read, before its batch came', () => {
    const { intake, peers, p } = setup();
    peers.account(p, performance.now() - 10, Infinity);
    intake.receive({ reports: [report(2)], readAt: [readClock() - 50], drops: {}, flooded: [] });
    expect(p.seq).toBe(2);
    expect(p.extra).toBeCloseTo(0.25, 9);
  });

  it('counts a redirect sent before the report was read as in it', () => {
    const { intake, peers, p } = setup();
    peers.account(p, performance.now() - 100, Infinity);
    intake.receive({ reports: [report(2)], readAt: [readClock() - 50], drops: {}, flooded: [] });
    expect(p.extra).toBe(0);
  });

  it('takes a report as read a period ago at most, however old its stamp (a reporter held up, a clock that stepped)', () => {
    const { intake, peers, p } = setup();
    // Sent 5 s ago, long before a report handed over now can have been read (its period is 200 ms).
    peers.account(p, performance.now() - 5_000, Infinity);
    intake.receive({ reports: [report(2)], readAt: [readClock() - 60_000], drops: {}, flooded: [] });
    expect(p.extra).toBe(0);
  });
});
