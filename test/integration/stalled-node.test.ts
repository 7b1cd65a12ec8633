import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADOPT_AFTER_REPORTS } from '../../src/broker/identity-takeover';
import { members, plainSecuritiesClient, sleep, unary, waitFor } from '../helpers/brokers';
import { freePort } from '../helpers/ports';
import { watchReports } from '../helpers/report-watch';
import { brokerProcessesForSuite, natsForSuite } from '../helpers/suite';

// The default period: on this shared machine a report may come a few hundred ms late.
const PERIOD_MS = 500;
/** Longer than the 3 periods after which a silent peer is off-line. */
const STALL_MS = 2_500;
const IDS = ['n1', 'n2', 'n3'];

describe('a node whose event loop stalled (broker processes on 127.0.0.2-4, with on-adopt hooks)', () => {
  const nats = natsForSuite();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-stall-'));
  const hookLog = (id: string) => path.join(dir, `${id}.log`);
  const adoptions = (id: string) => (fs.existsSync(hookLog(id)) ? fs.readFileSync(hookLog(id), 'utf8').split('\n').filter((l) => l.startsWith('adopt')) : []);
  const nodes = brokerProcessesForSuite(
    IDS,
    async () => ({ nats: [nats().url], cluster: 'stall', periodMs: PERIOD_MS, port: await freePort('127.0.0.2') }),
    Object.fromEntries(
      IDS.map((nodeId, i) => [
        nodeId,
        {
          listenHost: `127.0.0.${i + 2}`,
          extraArgs: ['--on-adopt', `echo "adopt $PEERBROKER_ENDPOINT" >> ${hookLog(nodeId)}`, '--on-release', `echo "release $PEERBROKER_ENDPOINT" >> ${hookLog(nodeId)}`],
        },
      ]),
    ),
  );

  beforeAll(async () => {
    // Long enough on-line that a real loss would be adopted: every node has had this many reports from each peer.
    const reports = await watchReports(nats().url, 'stall');
    try {
      await reports.waitForEach(IDS, ADOPT_AFTER_REPORTS + 1);
    } finally {
      await reports.close();
    }
  });

  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("adopts none of its live peers' addresses after a handler blocked its event loop", async () => {
    const n2 = nodes()[1];
    // Its reporter thread keeps reporting meanwhile: its peers see it busy, not off-line.
    // (First: in the next test its peers see n1 go silent, and may run their hooks for it.)
    await unary(plainSecuritiesClient(n2.endpoint), 'Audit', { busyMs: STALL_MS }, { timeoutMs: 10_000 });
    await sleep(5 * PERIOD_MS);
    expect(adoptions('n2')).toEqual([]);
    expect(n2.output()).not.toMatch(/peer off-line/);
    for (const b of nodes()) expect((await members(b.endpoint)).filter((m) => m.status === 'OFFLINE')).toEqual([]);
  });

  it("adopts none of its live peers' addresses after SIGSTOP and SIGCONT", async () => {
    const n1 = nodes()[0];
    process.kill(n1.pid, 'SIGSTOP');
    try {
      await sleep(STALL_MS);
    } finally {
      process.kill(n1.pid, 'SIGCONT');
    }
    // Its peers saw it silent (and may have claimed its address); it is back within a few periods.
    await waitFor(async () => (await members(nodes()[1].endpoint)).find((m) => m.nodeId === 'n1')?.status === 'ONLINE', 5_000, 50, 'n1 on-line again');
    await sleep(5 * PERIOD_MS);
    expect(adoptions('n1')).toEqual([]);
    expect(n1.output()).not.toMatch(/peer off-line/);
    expect(n1.output()).toMatch(/(main loop|reporter) was stalled/);
  });
});
