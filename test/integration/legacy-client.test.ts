import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  brokerStatus,
  callError,
  followMetadata,
  members,
  plainBankClient,
  serverStream,
  startBrokerProcesses,
  unary,
  waitFor,
  type BrokerProcess,
} from '../helpers/brokers';
import { natsForSuite } from '../helpers/suite';

const CLUSTER = 'legacy';
const CAPACITY = 4;
// The default queue is 4 x capacity = 16: 4 running + 14 waiting never fills it.
const CONCURRENT = 18;

describe('clients that do not follow redirects (three broker processes)', () => {
  const nats = natsForSuite();
  let n1: BrokerProcess;
  let n2: BrokerProcess;
  let n3: BrokerProcess;

  const counters = async () =>
    Object.fromEntries(
      await Promise.all(
        [n1, n2, n3].map(async (b) => {
          const s = await brokerStatus(b.endpoint);
          return [b.nodeId, { run: Number(s.callsRun), redirected: Number(s.callsRedirected), rejected: Number(s.callsRejected) }];
        }),
      ),
    ) as Record<string, { run: number; redirected: number; rejected: number }>;

  beforeAll(async () => {
    [n1, n2, n3] = await startBrokerProcesses(['n1', 'n2', 'n3'], {
      nats: [nats().url],
      cluster: CLUSTER,
      capacity: CAPACITY,
      threshold: 0.5,
      margin: 0.2,
      periodMs: 200,
      env: { BANK_WORK_MS: '30' },
    });
  });

  afterAll(async () => {
    await Promise.all([n1, n2, n3].map((b) => b?.kill9()));
  });

  it('never redirects a plain grpc-js client, however loaded the node and however idle its peers', async () => {
    const client = plainBankClient(n1.endpoint);
    const before = await counters();
    const served: string[] = [];
    const failures: string[] = [];
    let peakLoad = 0;
    for (let wave = 0; wave < 4; wave++) {
      const calls = Array.from({ length: CONCURRENT }, (_, i) => unary(client, 'GetBalance', { accountId: `w${wave}-${i}` }));
      // A plain server-streaming call in the middle of the wave is not redirected either.
      const stream = serverStream(client, 'StreamStatements', { accountId: `s${wave}`, count: 3 });
      const self = (await members(n1.endpoint)).find((m) => m.nodeId === 'n1')!;
      peakLoad = Math.max(peakLoad, self.load);
      for (const r of await Promise.allSettled([...calls, stream])) {
        if (r.status === 'rejected') failures.push(`${(r.reason as ServiceError).code}: ${(r.reason as Error).message}`);
        else if ('messages' in r.value) served.push(...r.value.servedBy);
        else served.push(r.value.servedBy!);
      }
    }
    expect(failures).toEqual([]);
    expect(served).toHaveLength(4 * (CONCURRENT + 1));
    expect(new Set(served)).toEqual(new Set(['n1']));
    // The node really was over threshold while its peers stayed idle.
    expect(peakLoad).toBeGreaterThanOrEqual(0.5);
    const after = await counters();
    expect(after.n1.redirected - before.n1.redirected).toBe(0);
    expect(after.n1.rejected - before.n1.rejected).toBe(0);
    expect(after.n1.run - before.n1.run).toBe(4 * (CONCURRENT + 1));
    expect(after.n2.run - before.n2.run).toBe(0);
    expect(after.n3.run - before.n3.run).toBe(0);
  });

  it('redirects a following client under the same load (the peers could have taken the calls)', async () => {
    const client = plainBankClient(n1.endpoint);
    const wave = Array.from({ length: CONCURRENT }, (_, i) => unary(client, 'GetBalance', { accountId: `c-${i}` }));
    await waitFor(
      async () => (await members(n1.endpoint)).find((m) => m.nodeId === 'n1')!.load >= 0.75,
      5_000,
      5,
      'n1 over threshold',
    );
    const err = await callError(unary(client, 'GetBalance', { accountId: 'follower' }, { metadata: followMetadata() }));
    await Promise.all(wave);
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect([n2.endpoint, n3.endpoint]).toContain(err.metadata.get('peerbroker-location')[0]);
    expect(err.metadata.get('peerbroker-reason')).toEqual(['load']);
  });
});
