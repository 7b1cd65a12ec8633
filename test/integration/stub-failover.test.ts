import { status } from '@grpc/grpc-js';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src';
import { bankClient, callError, startBroker, unary } from '../helpers/brokers';
import { freePort } from '../helpers/ports';
import { natsForSuite } from '../helpers/suite';

describe('stub failover', () => {
  const nats = natsForSuite();
  let n1: Broker;
  // A member nothing listens on: every connection is refused, so no call to it ever leaves the client.
  // (Not a name that does not resolve: without DNS, finding that out can take the resolver seconds.)
  let unreachable: string;

  beforeAll(async () => {
    n1 = await startBroker({ nodeId: 'n1', nats: [nats().url], cluster: 'stub-failover', capacity: 8, workMs: 1 });
    unreachable = `127.0.0.1:${await freePort()}`;
  });

  it('sends a call that never left (its member refuses connections) to another member, even a non-idempotent one', async () => {
    const client = bankClient([unreachable, n1.endpoint], { membersRefreshMs: 0 });
    const runBefore = n1.stats.run;
    const r = await unary(client, 'Deposit', { accountId: 'f1', amountCents: 1 }, { timeoutMs: 5_000 });
    expect(r.servedBy).toBe('n1');
    expect(n1.stats.run).toBe(runBefore + 1);
    expect(client.peerbroker.stats.failovers).toBe(1);
  });

  it('fails a call with the address’s own error when no other member is left', async () => {
    const client = bankClient([unreachable], { membersRefreshMs: 0 });
    const err = await callError(unary(client, 'Deposit', { accountId: 'f2', amountCents: 1 }, { timeoutMs: 5_000 }));
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).not.toMatch(/may or may not have run/);
  });
});
