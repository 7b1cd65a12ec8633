import { connect } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSubject } from '../../src';
import { encodeReport } from '../../src/cluster/report-codec';
import { cleanupBrokers, fakeReport, sleep, startBroker, waitFor } from '../helpers/brokers';
import { natsForSuite } from '../helpers/suite';

/** The period the brokers start with: their first sweep and health check would come seconds later. */
const SLOW_MS = 5_000;
const FAST_MS = 100;

describe('a period changed at run time (in-process brokers on a real nats-server)', () => {
  const nats = natsForSuite();

  afterEach(async () => {
    await cleanupBrokers();
  });

  it('checks its health at the new period', async () => {
    let healthy = true;
    const b = await startBroker({ nodeId: 'h1', nats: [nats().url], cluster: 'period-health', periodMs: SLOW_MS, healthProbe: () => healthy });
    b.configure({ periodMs: FAST_MS });
    healthy = false;
    const since = Date.now();
    await waitFor(() => b.status === 'UNHEALTHY', 3_000, 10, 'h1 to find itself unhealthy');
    // At the old period the first check would have come SLOW_MS after the start.
    expect(Date.now() - since).toBeLessThan(1_500);
  });

  it('marks a silent peer off-line after offline-after periods of the new period', async () => {
    const b = await startBroker({ nodeId: 's1', nats: [nats().url], cluster: 'period-sweep', periodMs: SLOW_MS });
    b.configure({ periodMs: FAST_MS });
    const nc = await connect({ servers: nats().url, name: 'period-peer' });
    try {
      // A peer that reports at the new period three times, then falls silent.
      const incarnation = Date.now();
      for (let seq = 1; seq <= 3; seq++) {
        nc.publish(loadSubject('period-sweep', 'p2'), encodeReport(fakeReport({ cluster: 'period-sweep', nodeId: 'p2', endpoint: '127.0.0.1:9', incarnation, seq, periodMs: FAST_MS })));
        await nc.flush();
        await sleep(FAST_MS / 2);
      }
      await waitFor(() => b.members().find((m) => m.nodeId === 'p2'), 2_000, 10, 's1 to hear p2');
      const silentSince = Date.now();
      await waitFor(() => b.members().find((m) => m.nodeId === 'p2')?.status === 'OFFLINE', 3_000, 10, 'p2 off-line');
      // Three periods of 100 ms, and the sweep every half period; at the old period it first ran SLOW_MS / 2 after the start.
      expect(Date.now() - silentSince).toBeLessThan(1_500);
    } finally {
      await nc.close();
    }
  });
});
