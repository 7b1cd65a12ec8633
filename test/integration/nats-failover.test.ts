import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanupBrokers,
  members,
  sleep,
  startBrokerProcesses,
  waitFor,
  waitForMembers,
  type BrokerProcess,
} from '../helpers/brokers';
import { connz, startNatsCluster, type NatsClusterHandle, type NatsServerHandle } from '../helpers/nats';
import { killAllTracked } from '../helpers/processes';

const CLUSTER = 'failover';
const PERIOD_MS = 200;
/** How long after the kill n2's view of n1 is watched. */
const WATCH_MS = 3_000;

/** Names of the client connections a server has now (its /connz monitoring endpoint). */
async function connectionNames(server: NatsServerHandle): Promise<string[]> {
  return ((await connz(server)).connections ?? []).map((c) => c.name ?? '');
}

/** The running server that has the connection named `name`. */
async function serverWith(cluster: NatsClusterHandle, name: string): Promise<NatsServerHandle | undefined> {
  for (const s of cluster.servers.filter((s) => s.running)) {
    if ((await connectionNames(s)).includes(name)) return s;
  }
  return undefined;
}

describe('control plane failover (three routed nats-servers, two broker processes)', () => {
  let nats: NatsClusterHandle;
  let n1: BrokerProcess;
  let n2: BrokerProcess;

  beforeAll(async () => {
    nats = await startNatsCluster(3);
    [n1, n2] = await startBrokerProcesses(['n1', 'n2'], { nats: nats.urls, cluster: CLUSTER, capacity: 4, periodMs: PERIOD_MS });
  });

  afterAll(async () => {
    await cleanupBrokers();
    await Promise.all([n1, n2].map((b) => b?.kill9()));
    await nats?.stop();
    await killAllTracked();
  });

  it("keeps a node's reports flowing when the nats-server it uses is killed", async () => {
    const name = `peerbroker-${CLUSTER}-n1`;
    const victim = await waitFor(() => serverWith(nats, name), 10_000, 50, `a server with the connection '${name}'`);
    await victim.kill9();
    const killedAt = Date.now();

    const seen: Array<{ at: number; status: string; ageMs: number }> = [];
    while (Date.now() - killedAt < WATCH_MS) {
      const peer = (await members(n2.endpoint)).find((m) => m.nodeId === 'n1');
      seen.push({ at: Date.now() - killedAt, status: peer?.status ?? 'ABSENT', ageMs: peer?.reportAgeMs ?? -1 });
      await sleep(25);
    }
    const summary = JSON.stringify(seen.filter((s) => s.status !== 'ONLINE' || s.ageMs > PERIOD_MS * 1.5));

    // Never gone, never off-line: at worst briefly UNKNOWN while the client reconnects.
    expect(seen.filter((s) => s.status === 'OFFLINE' || s.status === 'ABSENT'), summary).toEqual([]);
    expect(Math.max(...seen.map((s) => s.ageMs)), summary).toBeLessThan(3 * PERIOD_MS);
    // After the reconnect (well within the first second), reports arrive every period again.
    const settled = seen.filter((s) => s.at > 1_000);
    expect(settled.length).toBeGreaterThan(10);
    const online = settled.filter((s) => s.status === 'ONLINE');
    expect(online.length, summary).toBeGreaterThanOrEqual(0.9 * settled.length);
    const ages = settled.map((s) => s.ageMs).sort((a, b) => a - b);
    expect(ages[Math.floor(ages.length / 2)], summary).toBeLessThanOrEqual(PERIOD_MS);
    expect(n2.output()).not.toMatch(/peer off-line/);

    // n1 moved to a surviving server, and still sees n2.
    const now = await serverWith(nats, name);
    expect(now).toBeDefined();
    expect(now).not.toBe(victim);
    await waitForMembers(n1.endpoint, { n1: 'ONLINE', n2: 'ONLINE' }, 5_000);
  });
});
