import * as net from 'node:net';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSubject } from '../../src';
import { MAX_ADOPTED } from '../../src/broker/identity-takeover';
import { encodeReport } from '../../src/cluster/report-codec';
import { fakeReport, members, sleep, waitFor, waitForMembers, type BrokerProcess } from '../helpers/brokers';
import { freePorts } from '../helpers/ports';
import { brokerProcessesForSuite, natsForSuite } from '../helpers/suite';

const CLUSTER = 'forged';
const PERIOD_MS = 200;

/** True when something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * A raw NATS publisher speaking as `ghosts` (node id → endpoint), each with `takeover`,
 * `rounds` reports `gapMs` apart, then silent, as a node that died would be.
 */
async function haunt(nc: NatsConnection, ghosts: Array<[string, string]>, rounds: number, gapMs: number): Promise<void> {
  const incarnation = Date.now();
  for (let seq = 1; seq <= rounds; seq++) {
    for (const [nodeId, endpoint] of ghosts) {
      nc.publish(loadSubject(CLUSTER, nodeId), encodeReport(fakeReport({ cluster: CLUSTER, nodeId, endpoint, incarnation, seq, periodMs: PERIOD_MS, takeover: true })));
    }
    await nc.flush();
    if (seq < rounds) await sleep(gapMs);
  }
}

describe('forged reports of nodes that fall silent (two broker processes, a raw NATS publisher without a key)', () => {
  const nats = natsForSuite();
  const nodes = brokerProcessesForSuite(['n1', 'n2'], () => ({ nats: [nats().url], cluster: CLUSTER, periodMs: PERIOD_MS }));
  let nc: NatsConnection;

  beforeAll(async () => {
    nc = await connect({ servers: nats().url, name: 'ghosts' });
  });

  afterAll(async () => {
    await nc?.close();
  });

  it('never makes a node listen on a wildcard address, nor adopt a node seen only a moment', async () => {
    const [wild, brief] = await freePorts(2);
    // A long-lived ghost at 0.0.0.0, and one at a loopback address that said five words at once.
    await Promise.all([haunt(nc, [['wild', `0.0.0.0:${wild}`]], 10, PERIOD_MS), haunt(nc, [['brief', `127.0.0.1:${brief}`]], 5, 0)]);
    await waitForMembers(nodes()[0].endpoint, { n1: 'ONLINE', n2: 'ONLINE', wild: 'OFFLINE', brief: 'OFFLINE' }, 5_000);
    await sleep(4 * PERIOD_MS);
    expect(await accepts(wild)).toBe(false);
    expect(await accepts(brief)).toBe(false);
    for (const b of nodes()) expect((await members(b.endpoint)).find((m) => m.nodeId === b.nodeId)?.endpoints).toEqual([b.endpoint]);
  });

  it(`adopts at most ${MAX_ADOPTED} endpoints of 200 ghosts, so the real nodes keep seeing each other`, async () => {
    const ports = await freePorts(200);
    await haunt(nc, ports.map((p, i) => [`g${i}`, `127.0.0.1:${p}`]), 6, PERIOD_MS);
    // Off-line after 3 periods of silence.
    for (const b of nodes()) {
      await waitFor(
        async () => {
          const ghosts = (await members(b.endpoint)).filter((m) => /^g\d+$/.test(m.nodeId));
          // Not every ghost need get in: reports of ids not yet known share a reading budget
          // (NEWCOMER_BUDGET_MS_PER_SEC), and a burst of 200 new ids overruns it.
          return ghosts.length >= 100 && ghosts.every((m) => m.status === 'OFFLINE');
        },
        10_000,
        50,
        `${b.nodeId} to see 100 or more ghosts, all off-line`,
      );
    }
    // How many each node adopts depends on how many ghosts it let in and how they rank (ghosts
    // that said they take over rank too); whatever it is, it stays within the cap, and the
    // cluster adopts some. Time for the fallback claims to run out: 10 periods.
    await sleep(10 * PERIOD_MS);
    const adopted = async (b: BrokerProcess) => ((await members(b.endpoint)).find((m) => m.nodeId === b.nodeId)?.endpoints.length ?? 1) - 1;
    const counts = await Promise.all(nodes().map(adopted));
    for (const c of counts) expect(c).toBeLessThanOrEqual(MAX_ADOPTED);
    expect(counts.reduce((a, c) => a + c, 0)).toBeGreaterThan(0);
    for (const b of nodes()) {
      const view = await members(b.endpoint);
      const real = view.filter((m) => m.nodeId === 'n1' || m.nodeId === 'n2');
      expect(real.map((m) => [m.nodeId, m.status]).sort(), `${b.nodeId}'s view`).toEqual([['n1', 'ONLINE'], ['n2', 'ONLINE']]);
      for (const m of real) expect(m.endpoints.length).toBeLessThanOrEqual(1 + MAX_ADOPTED);
    }
    for (const b of nodes()) expect(b.output()).not.toMatch(/"peer":"n[12]".*peer off-line|peer off-line.*"peer":"n[12]"/);
  });
});
