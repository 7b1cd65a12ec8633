import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bankClient,
  brokerStatus,
  holdSlots,
  members,
  startBrokerProcesses,
  statusMap,
  unary,
  waitFor,
  waitForMembers,
  type BrokerProcess,
  type SlotHold,
} from '../helpers/brokers';
import { natsForSuite } from '../helpers/suite';

const CLUSTER = 'offline';
const PERIOD_MS = 200;

describe('off-line and leaving peers (three broker processes)', () => {
  const nats = natsForSuite();
  let n1: BrokerProcess;
  let n2: BrokerProcess;
  let n3: BrokerProcess;
  const holds: SlotHold[] = [];

  beforeAll(async () => {
    [n1, n2, n3] = await startBrokerProcesses(['n1', 'n2', 'n3'], {
      nats: [nats().url],
      cluster: CLUSTER,
      capacity: 4,
      threshold: 0.5,
      margin: 0.2,
      periodMs: PERIOD_MS,
      env: { BANK_WORK_MS: '50' },
    });
  });

  afterAll(async () => {
    for (const h of holds) h.release();
    await Promise.all([n1, n2, n3].map((b) => b?.kill9()));
  });

  it('marks a peer killed with SIGKILL OFFLINE after three missed periods', async () => {
    await n3.kill9();
    const killedAt = Date.now();
    await waitFor(async () => statusMap(await members(n1.endpoint)).n3 === 'OFFLINE', 5_000, 20, 'n1 to list n3 OFFLINE');
    // Three periods of silence, plus the age of its last report at the kill and a sweep.
    expect(Date.now() - killedAt).toBeLessThan(3 * PERIOD_MS + 2_000);
    expect(statusMap(await members(n1.endpoint))).toEqual({ n1: 'ONLINE', n2: 'ONLINE', n3: 'OFFLINE' });
    await waitForMembers(n2.endpoint, { n1: 'ONLINE', n2: 'ONLINE', n3: 'OFFLINE' }, 5_000);
  });

  it('never redirects a call to an off-line peer, even one whose last report said idle', async () => {
    // n1 over threshold (0.75); n2 busier (0.25) than n3's last word (0), but n3 is dead.
    holds.push(holdSlots(n1.endpoint, 3), holdSlots(n2.endpoint, 1));
    await waitFor(
      async () => {
        const view = await members(n1.endpoint);
        const by = Object.fromEntries(view.map((m) => [m.nodeId, m]));
        return by.n1.load === 0.75 && by.n2.load === 0.25 && by.n2.status === 'ONLINE' && by.n3.status === 'OFFLINE';
      },
      10_000,
      20,
      'n1 at 0.75 to see n2 at 0.25 and n3 OFFLINE',
    );
    const client = bankClient([n1.endpoint], { membersRefreshMs: 0 });
    // Every redirect the stub followed was sent by n1 or (bouncing a call back) by n2; none by n3.
    const redirectedSoFar = async () =>
      Number((await brokerStatus(n1.endpoint)).callsRedirected) + Number((await brokerStatus(n2.endpoint)).callsRedirected);
    const redirectedBefore = await redirectedSoFar();
    const served: string[] = [];
    const failures: string[] = [];
    for (let round = 0; round < 5; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => unary(client, 'GetBalance', { accountId: `r${round}-${i}` })),
      );
      for (const r of results) {
        if (r.status === 'fulfilled') served.push(r.value.servedBy!);
        else failures.push(String((r.reason as Error).message));
      }
    }
    expect(failures).toEqual([]);
    expect(served).toHaveLength(40);
    expect(served.filter((s) => s !== 'n1' && s !== 'n2')).toEqual([]);
    // The load rule was in play: some calls did go to the on-line peer.
    expect(served.filter((s) => s === 'n2').length).toBeGreaterThan(0);
    expect(client.peerbroker.stats.redirectsFollowed).toBeGreaterThan(0);
    expect((await redirectedSoFar()) - redirectedBefore).toBe(client.peerbroker.stats.redirectsFollowed);
    for (const h of holds.splice(0)) h.release();
  });

  it('drops a peer that stops with SIGTERM from Members at once, without waiting for it to go off-line', async () => {
    const exit = await n2.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    const seen: string[] = [];
    // An OFFLINE peer stays listed for a minute: gone means the LEAVING report was applied.
    await waitFor(
      async () => {
        const view = statusMap(await members(n1.endpoint));
        if (view.n2) seen.push(view.n2);
        return view.n2 === undefined;
      },
      2_000,
      10,
      'n1 to drop n2',
    );
    expect(seen.filter((s) => s === 'OFFLINE')).toEqual([]);
    expect(statusMap(await members(n1.endpoint))).toEqual({ n1: 'ONLINE', n3: 'OFFLINE' });
    expect(n2.output()).toMatch(/broker stopped/);
  });
});
