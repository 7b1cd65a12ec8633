import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bankProto } from '../../examples/bank';
import {
  cleanupBrokers,
  members,
  sleep,
  startBrokerProcess,
  waitFor,
  type BrokerProcess,
} from '../helpers/brokers';
import { startNatsServer, type NatsServerHandle } from '../helpers/nats';
import { freePort } from '../helpers/ports';
import { killAllTracked } from '../helpers/processes';
import { watchReports, type ReportWatch } from '../helpers/report-watch';
import { rendezvousRanking } from '../../src/cluster/rendezvous';
import { ADOPT_AFTER_REPORTS } from '../../src/broker/identity-takeover';

const PERIOD_MS = 200;
const CLUSTER = 'takeover';

/** One call from a plain grpc-js client that dials `endpoint` afresh, as a client with a cached address would. */
function servedBy(endpoint: string): Promise<string> {
  const c = new (bankProto().bank.Banking)(endpoint, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) =>
    c.GetBalance({ accountId: 'a' }, { deadline: Date.now() + 1_000 }, (err: grpc.ServiceError | null, v?: { servedBy: string }) => {
      c.close();
      if (err) reject(err);
      else resolve(v!.servedBy);
    }),
  );
}

describe('identity takeover on loopback addresses (broker processes on 127.0.0.2-4)', () => {
  let nats: NatsServerHandle;
  let port: number;
  let nodes: BrokerProcess[];
  let reports: ReportWatch;
  const hostOf = (id: string) => `127.0.0.${Number(id.slice(1)) + 1}`;

  beforeAll(async () => {
    nats = await startNatsServer();
    port = await freePort('127.0.0.2');
    nodes = await Promise.all(
      ['n1', 'n2', 'n3'].map((nodeId) =>
        startBrokerProcess({ nodeId, nats: [nats.url], cluster: CLUSTER, periodMs: PERIOD_MS, listenHost: hostOf(nodeId), port }),
      ),
    );
    // Counted from here, every node hears each report counted (all are subscribed).
    reports = await watchReports(nats.url, CLUSTER);
    // Every node must know every other before one dies: rendezvous needs the same view.
    for (const observer of nodes) {
      await waitFor(async () => (await members(observer.endpoint)).filter((m) => m.status === 'ONLINE').length === 3, 10_000, 50, `${observer.nodeId} to see three online`);
    }
    // Only a peer that reported over several periods is adopted from.
    await reports.waitForEach(['n1', 'n2', 'n3'], ADOPT_AFTER_REPORTS + 1);
  });

  afterEach((ctx) => {
    // A failed run shows what each broker logged (adoption, binds, peer state).
    if (ctx.task.result?.state === 'fail') for (const b of nodes) console.log(`--- ${b.nodeId} ---\n${b.output()}`);
  });

  afterAll(async () => {
    await reports?.close();
    await cleanupBrokers();
    await Promise.all(nodes.map((b) => b.kill9()));
    await nats?.stop();
    await killAllTracked();
  });

  it("serves a killed node's address from exactly one survivor within 3 periods + 1 s, and gives it back when the node returns", async () => {
    const lost = `${hostOf('n1')}:${port}`;
    expect(await servedBy(lost)).toBe('n1');

    await nodes[0].kill9();
    const killedAt = Date.now();
    const adopter = await waitFor(
      async () => {
        return await servedBy(lost);
      },
      3 * PERIOD_MS + 5_000,
      25,
      `a survivor to serve ${lost}`,
    );
    const detectionAndTakeoverMs = Date.now() - killedAt;
    expect(['n2', 'n3']).toContain(adopter);
    expect(detectionAndTakeoverMs).toBeLessThan(3 * PERIOD_MS + 1_000);

    // Exactly one survivor advertises the address.
    await waitFor(
      async () => (await members(nodes[1].endpoint)).filter((m) => m.status === 'ONLINE' && m.endpoints.includes(lost)).length === 1,
      3_000,
      50,
      'one adopter in the member list',
    );
    // ... and every survivor sees the same one.
    for (const observer of [nodes[1], nodes[2]]) {
      await waitFor(
        async () => {
          const list = (await members(observer.endpoint)).filter((m) => m.endpoints.includes(lost) && m.nodeId !== 'n1');
          return list.length === 1 && list[0].nodeId === adopter;
        },
        3_000,
        50,
        `${observer.nodeId} to list ${adopter} as the one adopter`,
      );
    }

    // The owner comes back on the same address: the adopter lets it go, the owner binds it.
    nodes[0] = await startBrokerProcess({ nodeId: 'n1', nats: [nats.url], cluster: CLUSTER, periodMs: PERIOD_MS, listenHost: hostOf('n1'), port });
    await waitFor(async () => (await servedBy(lost).catch(() => '')) === 'n1', 5_000, 50, 'n1 to serve its own address again');
    await waitFor(
      async () => (await members(nodes[1].endpoint)).every((m) => m.nodeId === 'n1' || !m.endpoints.includes(lost)),
      3_000,
      50,
      'the adopter to stop advertising it',
    );
    console.log(`identity takeover: address served again ${detectionAndTakeoverMs} ms after kill -9 (period ${PERIOD_MS} ms)`);
  });

  it('moves an adopted address on to the last survivor when its adopter leaves cleanly', async () => {
    const lost = `${hostOf('n1')}:${port}`;
    expect(await servedBy(lost)).toBe('n1');
    // n1 started again in the test before: its peers (up all along) have heard this many reports of its new incarnation.
    await reports.waitForEach(['n1'], ADOPT_AFTER_REPORTS + 1);
    await nodes[0].kill9();
    const adopter = await waitFor(() => servedBy(lost).catch(() => ''), 5_000, 25, `a survivor to serve ${lost}`);
    const [leaving, last] = adopter === 'n2' ? [nodes[1], nodes[2]] : [nodes[2], nodes[1]];
    expect(leaving.nodeId).toBe(adopter);
    // The last survivor has seen n1 go off-line and the adopter take its address (so it does not adopt it itself).
    await waitFor(
      async () => {
        const view = await members(last.endpoint);
        return view.find((m) => m.nodeId === 'n1')?.status === 'OFFLINE' && view.find((m) => m.nodeId === adopter)?.endpoints.includes(lost);
      },
      3_000,
      25,
      `${last.nodeId} to see n1 off-line and ${adopter} serving its address`,
    );
    await sleep(3 * PERIOD_MS); // past the last survivor's own grace time for a fallback claim

    // A clean stop (SIGTERM): the node leaves, its own address goes with it, the adopted one moves on.
    const exit = await leaving.stop();
    expect(exit.code).toBe(0);
    await waitFor(async () => (await servedBy(lost).catch(() => '')) === last.nodeId, 5_000, 25, `${last.nodeId} to serve ${lost}`);
    expect((await members(last.endpoint)).find((m) => m.nodeId === last.nodeId)?.endpoints).toContain(lost);
  });
});

describe('identity takeover when the first-ranked survivor never heard of the lost node', () => {
  const SLOW_PERIOD_MS = 1_000;
  let nats: NatsServerHandle;
  const started: BrokerProcess[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
  });

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') for (const b of started) console.log(`--- ${b.nodeId} ---\n${b.output()}`);
  });

  afterAll(async () => {
    await Promise.all(started.map((b) => b.kill9()));
    await nats?.stop();
    await killAllTracked();
  });

  it('the next survivor in rank serves the address after its grace time', async () => {
    const cluster = 'takeover-late';
    const port = await freePort('127.0.0.2');
    const lost = `127.0.0.2:${port}`;
    const common = { nats: [nats.url], cluster, periodMs: SLOW_PERIOD_MS, port };
    const [n1, n2] = await Promise.all([
      startBrokerProcess({ nodeId: 'n1', listenHost: '127.0.0.2', ...common }),
      startBrokerProcess({ nodeId: 'n2', listenHost: '127.0.0.3', ...common }),
    ]);
    started.push(n1, n2);
    // Counted from here, n2 hears each report of n1 counted.
    const reports = await watchReports(nats.url, cluster);
    try {
      await waitFor(async () => (await members(n2.endpoint)).some((m) => m.nodeId === 'n1' && m.status === 'ONLINE'), 10_000, 50, 'n2 to see n1');
      // Only a peer that reported over several periods is adopted from.
      await reports.waitForEach(['n1'], ADOPT_AFTER_REPORTS + 1);
    } finally {
      await reports.close();
    }
    // A late node that outranks n2 for n1's address, so rendezvous names it the adopter.
    let late = 'n3';
    for (let i = 0; rendezvousRanking(lost, ['n2', late])[0] !== late; i++) late = `n3-${i}`;

    await n1.kill9();
    const killedAt = Date.now();
    // The late node joins after n1 died, so it never hears of n1, and n2 sees it before n1 goes off-line.
    const n3 = await startBrokerProcess({ nodeId: late, listenHost: '127.0.0.4', ...common });
    started.push(n3);
    await waitFor(async () => (await members(n2.endpoint)).some((m) => m.nodeId === late && m.status === 'ONLINE'), 5_000, 20, `n2 to see ${late}`);
    const beforeDetection = (await members(n2.endpoint)).find((m) => m.nodeId === 'n1');
    // Not yet off-line (ONLINE, or UNKNOWN once its reports are two periods old).
    expect(['ONLINE', 'UNKNOWN'], 'n2 saw the late node before it saw n1 off-line').toContain(beforeDetection?.status);

    const adopter = await waitFor(() => servedBy(lost).catch(() => ''), 3 * SLOW_PERIOD_MS + 2 * SLOW_PERIOD_MS + 5_000, 50, `a survivor to serve ${lost}`);
    const servedAfterMs = Date.now() - killedAt;
    expect(adopter).toBe('n2');
    expect(n2.output()).toMatch(/no survivor ranked above this node claimed the endpoint/);
    expect((await members(n3.endpoint)).map((m) => m.nodeId)).not.toContain('n1');
    console.log(`identity takeover, late first-ranked node: address served by the next in rank ${servedAfterMs} ms after kill -9 (period ${SLOW_PERIOD_MS} ms)`);
  });
});
