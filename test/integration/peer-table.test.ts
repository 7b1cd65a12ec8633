import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSubject } from '../../src';
import { DEFAULT_MAX_PEERS } from '../../src/cluster/peer-view';
import { encodeReport, MAX_REPORT_BYTES, type LoadReport } from '../../src/cluster/report-codec';
import { bankClient, brokerStatus, fakeReport, members, sleep, unary, waitFor } from '../helpers/brokers';
import { brokerProcessesForSuite, natsForSuite } from '../helpers/suite';

const CLUSTER = 'table';
// The default period: on this shared machine a report may come a few hundred ms late.
const PERIOD_MS = 500;
/** Fakes announce a long period, so they stay on-line while the test looks. */
const FAKE_PERIOD_MS = 10_000;

describe('a peer table flooded with fake ids, without a key (two broker processes, a raw NATS publisher)', () => {
  const nats = natsForSuite();
  // n1 hosts only Securities: its Banking calls go to n2, which the stub must know from Members.
  const nodes = brokerProcessesForSuite(['n1', 'n2'], () => ({ nats: [nats().url], cluster: CLUSTER, periodMs: PERIOD_MS }), {
    n1: { extraArgs: ['--services', 'bank.Securities'] },
  });
  let nc: NatsConnection;
  const incarnation = Date.now();
  const fake = (nodeId: string, over: Partial<LoadReport> = {}) =>
    encodeReport(fakeReport({ cluster: CLUSTER, nodeId, endpoint: '127.0.0.1:9', incarnation, load: 0.9, periodMs: FAKE_PERIOD_MS, ...over }));

  beforeAll(async () => {
    nc = await connect({ servers: nats().url, name: 'fakes' });
  });

  afterAll(async () => {
    await nc?.close();
  });

  it('keeps the Members answer small enough for the stub, which still follows redirects to the real peer', async () => {
    // Without the bounds: 90 fakes of about 62 KB each: 5.6 MB of members, past the 4 MiB a stub accepts.
    const services = Array.from({ length: 1_000 }, (_, i) => `fake.Service${String(i).padStart(4, '0')}${'x'.repeat(44)}`);
    for (let i = 0; i < 90; i++) {
      const data = fake(`fat${i}`, { services });
      expect(data.length).toBeLessThan(MAX_REPORT_BYTES);
      nc.publish(loadSubject(CLUSTER, `fat${i}`), data);
      if (i % 10 === 9) await nc.flush();
    }
    // New ids are read within a budget of time: a few of these fakes are listed at first.
    await waitFor(async () => (await members(nodes()[0].endpoint, 10_000)).length > 4, 10_000, 50, 'n1 to list fakes');
    const client = bankClient([nodes()[0].endpoint]);
    const outcomes: string[] = [];
    for (let i = 0; i < 8; i++) {
      outcomes.push(
        await unary<{ servedBy: string }>(client, 'GetBalance', { accountId: `m${i}` }, { timeoutMs: 5_000 }).then(
          (r) => `served by ${r.servedBy}`,
          (err: Error) => err.message,
        ),
      );
    }
    // Without the bounds the stub could not read Members and refused every redirect to n2
    // ('not a known member'). (On a busy machine n2's report may be late for a moment: then n1
    // finds no fresh host, UNIMPLEMENTED, which is not what this test is about.)
    expect(outcomes.filter((o) => /not a known member/.test(o))).toEqual([]);
    expect(outcomes).toContain('served by n2');
  });

  it(`keeps at most ${DEFAULT_MAX_PEERS} peers: later ids are dropped and counted, known peers unaffected; a ten-minute period is refused`, async () => {
    nc.publish(loadSubject(CLUSTER, 'slow'), fake('slow', { periodMs: 600_000 }));
    // 1 500 fakes at about 1 500 a second (the rate new ids are read at).
    for (let i = 0; i < 1_500; i += 15) {
      for (let j = i; j < i + 15; j++) nc.publish(loadSubject(CLUSTER, `t${j}`), fake(`t${j}`));
      await nc.flush();
      await sleep(10);
    }
    await waitFor(async () => Number((await brokerStatus(nodes()[0].endpoint)).reportsDroppedByReason['peer-limit'] ?? 0) > 0, 5_000, 50, 'new ids past the limit to be dropped');
    for (const b of nodes()) {
      const list = await members(b.endpoint);
      expect(list.length, `${b.nodeId}'s members`).toBeLessThanOrEqual(DEFAULT_MAX_PEERS + 1);
      // Both real nodes still listed, neither off-line (a report may be late on a busy machine: UNKNOWN).
      expect(list.filter((m) => (m.nodeId === 'n1' || m.nodeId === 'n2') && m.status !== 'OFFLINE')).toHaveLength(2);
      expect(list.map((m) => m.nodeId)).not.toContain('slow');
    }
    const status = await brokerStatus(nodes()[0].endpoint);
    expect(Number(status.reportsDroppedByReason.invalid)).toBeGreaterThanOrEqual(1);
  });
});
