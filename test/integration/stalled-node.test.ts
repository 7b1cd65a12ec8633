import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ADOPT_AFTER_REPORTS } from '../../src/broker/identity-takeover';
import { members, plainSecuritiesClient, sleep, startBrokerProcess, unary, waitFor, type BrokerProcess } from '../helpers/brokers';
import { freePort } from '../helpers/ports';
import { natsForSuite } from '../helpers/suite';

const PERIOD_MS = 200;
/** Longer than the 3 periods after which a silent peer is off-line. */
const STALL_MS = 1_500;

describe('a node whose event loop stalled (broker processes on 127.0.0.2-4, with on-adopt hooks)', () => {
  const nats = natsForSuite();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-stall-'));
  const hookLog = (id: string) => path.join(dir, `${id}.log`);
  const adoptions = (id: string) => (fs.existsSync(hookLog(id)) ? fs.readFileSync(hookLog(id), 'utf8').split('\n').filter((l) => l.startsWith('adopt')) : []);
  let nodes: BrokerProcess[] = [];

  beforeAll(async () => {
    const port = await freePort('127.0.0.2');
    nodes = await Promise.all(
      ['n1', 'n2', 'n3'].map((nodeId, i) =>
        startBrokerProcess({
          nodeId,
          nats: [nats().url],
          cluster: 'stall',
          periodMs: PERIOD_MS,
          listenHost: `127.0.0.${i + 2}`,
          port,
          extraArgs: ['--on-adopt', `echo "adopt $PEERBROKER_ENDPOINT" >> ${hookLog(nodeId)}`, '--on-release', `echo "release $PEERBROKER_ENDPOINT" >> ${hookLog(nodeId)}`],
        }),
      ),
    );
    for (const b of nodes) {
      await waitFor(async () => (await members(b.endpoint)).filter((m) => m.status === 'ONLINE').length === 3, 10_000, 50, `${b.nodeId} to see three online`);
    }
    // Long enough on-line that a real loss would be adopted.
    await sleep((ADOPT_AFTER_REPORTS + 1) * PERIOD_MS);
  });

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') for (const b of nodes) console.log(`--- ${b.nodeId} ---\n${b.output()}`);
  });

  afterAll(async () => {
    await Promise.all(nodes.map((b) => b.kill9()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("adopts none of its live peers' addresses after a handler blocked its event loop", async () => {
    const n2 = nodes[1];
    // Its reporter thread keeps reporting meanwhile: its peers see it busy, not off-line.
    // (First: in the next test its peers see n1 go silent, and may run their hooks for it.)
    await unary(plainSecuritiesClient(n2.endpoint), 'Audit', { busyMs: STALL_MS }, { timeoutMs: 10_000 });
    await sleep(5 * PERIOD_MS);
    expect(adoptions('n2')).toEqual([]);
    expect(n2.output()).not.toMatch(/peer off-line/);
    for (const b of nodes) expect((await members(b.endpoint)).filter((m) => m.status === 'OFFLINE')).toEqual([]);
  });

  it("adopts none of its live peers' addresses after SIGSTOP and SIGCONT", async () => {
    const n1 = nodes[0];
    process.kill(n1.pid, 'SIGSTOP');
    try {
      await sleep(STALL_MS);
    } finally {
      process.kill(n1.pid, 'SIGCONT');
    }
    // Its peers saw it silent (and may have claimed its address); it is back within a few periods.
    await waitFor(async () => (await members(nodes[1].endpoint)).find((m) => m.nodeId === 'n1')?.status === 'ONLINE', 5_000, 50, 'n1 on-line again');
    await sleep(5 * PERIOD_MS);
    expect(adoptions('n1')).toEqual([]);
    expect(n1.output()).not.toMatch(/peer off-line/);
    expect(n1.output()).toMatch(/(main loop|reporter) was stalled/);
  });
});
