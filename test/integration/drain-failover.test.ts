import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import {
  bankClient,
  callError,
  sleep,
  startBrokerProcesses,
  unary,
  waitForMembers,
  type BrokerProcess,
} from '../helpers/brokers';
import { exitOf } from '../helpers/processes';
import { natsForSuite } from '../helpers/suite';

const PERIOD_MS = 200;

describe('drain and client failover (broker processes)', () => {
  const nats = natsForSuite();
  let nodes: BrokerProcess[];

  afterAll(async () => {
    await Promise.all((nodes ?? []).map((b) => b.kill9()));
  });

  it('drains a node on SIGTERM under steady load from stubs with zero failed calls, and exits with 0', async () => {
    nodes = await startBrokerProcesses(['d1', 'd2', 'd3'], {
      nats: [nats().url],
      cluster: 'drain',
      periodMs: PERIOD_MS,
      capacity: 16,
      env: { BANK_WORK_MS: '20' },
    });
    const [d1, d2] = nodes;
    // Every client keeps d1's address, as a client with a cached DNS entry would.
    const client = bankClient([d1.endpoint], { membersRefreshMs: 500 });
    await waitForMembers(d1.endpoint, { d1: 'ONLINE', d2: 'ONLINE', d3: 'ONLINE' });
    await sleep(600); // the stub has learned the members

    const served: Record<string, number> = {};
    const failures: string[] = [];
    let stop = false;
    const worker = async () => {
      for (let i = 0; i < 2_000 && !stop; i++) {
        try {
          // Deposit is not idempotent: it may be re-sent only where it provably never ran.
          const r = await unary(client, 'Deposit', { accountId: 'acc', amountCents: 1 }, { timeoutMs: 5_000 });
          served[r.servedBy ?? '?'] = (served[r.servedBy ?? '?'] ?? 0) + 1;
        } catch (err) {
          failures.push(`${(err as grpc.ServiceError).code}: ${(err as grpc.ServiceError).details}`);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, worker));
    await sleep(1_000);
    const exit = exitOf(d1.child);
    d1.child.kill('SIGTERM');
    const { code } = await exit;
    await sleep(1_000);
    stop = true;
    await load;

    expect(code).toBe(0);
    expect(failures).toEqual([]);
    expect((served.d2 ?? 0) + (served.d3 ?? 0)).toBeGreaterThan(0);
    expect(d1.output()).toMatch(/draining/);
    await waitForMembers(d2.endpoint, { d2: 'ONLINE', d3: 'ONLINE' }, 3_000).catch(async () => {
      // d1 is gone from the list (LEAVING), not off-line
      throw new Error('d1 did not leave cleanly');
    });
    console.log(`drain under load: served ${JSON.stringify(served)}, failed ${failures.length}`);
  });

  it('retries a call on another member when its node is unreachable, and an idempotent one even mid-call', async () => {
    await Promise.all((nodes ?? []).map((b) => b.kill9()));
    nodes = await startBrokerProcesses(['f1', 'f2'], {
      nats: [nats().url],
      cluster: 'failover',
      periodMs: PERIOD_MS,
      env: { BANK_WORK_MS: '800' },
      // Without takeover f1's address stays dead, so the stub itself must move.
      extraArgs: ['--no-takeover'],
    });
    const [f1, f2] = nodes;
    const client = bankClient([f1.endpoint], { membersRefreshMs: 500 });
    await sleep(600);
    // Mid-call: f1 dies while both calls run there.
    const idempotent = unary(client, 'GetBalance', { accountId: 'a' }, { timeoutMs: 5_000 });
    const notIdempotent = callError(unary(client, 'Deposit', { accountId: 'a', amountCents: 5 }, { timeoutMs: 5_000 }));
    await sleep(300);
    await f1.kill9();
    expect((await idempotent).servedBy).toBe('f2');
    const err = await notIdempotent;
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toMatch(/may or may not have run/);

    // Before the call is sent: f1's address refuses connections, so even Deposit moves to f2.
    const r = await unary(client, 'Deposit', { accountId: 'a', amountCents: 5 }, { timeoutMs: 5_000 });
    expect(r.servedBy).toBe('f2');
    expect(client.peerbroker.stats.failovers).toBeGreaterThanOrEqual(2);
    void f2;
  });
});
