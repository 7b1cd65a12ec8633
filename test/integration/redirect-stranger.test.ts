import net from 'node:net';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker, Decision } from '../../src';
import type { PeerEntry } from '../../src/policy';
import { bankClient, callError, cleanupBrokers, serverStream, startBroker, unary } from '../helpers/brokers';

/**
 * A broker patched to answer every following call with a redirect to `endpoint`, an
 * address that is not a member of the cluster (as a compromised or buggy node would).
 */
function redirectEverythingTo(broker: Broker, endpoint: string): void {
  const gate = (broker as unknown as { gate: { decideFor: (...a: unknown[]) => Decision; call: { follows: boolean } } }).gate;
  const decide = gate.decideFor.bind(gate);
  const peer: PeerEntry = {
    nodeId: 'stranger',
    endpoint,
    status: 'ONLINE',
    occupancy: 0,
    maxQueue: 0,
    extra: 0,
    capacity: 100,
    services: new Set(['bank.Banking']),
    receivedAt: performance.now(),
    periodMs: 200,
  };
  gate.decideFor = (...args: unknown[]) => {
    const d = decide(...args);
    return gate.call.follows ? { kind: 'redirect', peer, reason: 'load', home: false, selfLoad: 1, peerLoad: 0 } : d;
  };
}

describe('a redirect to an endpoint that is not a member', () => {
  let broker: Broker;
  let strangerEndpoint: string;
  let dialled = 0;
  let server: net.Server;

  beforeAll(async () => {
    // The stranger: a listener that counts every connection attempt.
    server = net.createServer((s) => {
      dialled++;
      s.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    strangerEndpoint = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    broker = await startBroker({ nodeId: 'n1', cluster: 'stranger', capacity: 4, workMs: 1 });
    redirectEverythingTo(broker, strangerEndpoint);
  });

  afterAll(async () => {
    await cleanupBrokers();
    await new Promise((r) => server.close(r));
  });

  const refused = (err: ServiceError) => {
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).toContain(`refused redirect to '${strangerEndpoint}'`);
    expect(err.details).toContain("node 'stranger'");
    expect(err.details).toContain('not a known member');
  };

  it('fails a unary call with UNAVAILABLE naming the endpoint, and never dials it', async () => {
    const client = bankClient([broker.endpoint]);
    const runBefore = broker.stats.run;
    const err = await callError(unary(client, 'GetBalance', { accountId: 'a' }));
    refused(err);
    expect(client.peerbroker.stats.redirectsRefused).toBe(1);
    expect(client.peerbroker.stats.redirectsFollowed).toBe(0);
    expect(client.peerbroker.pool.endpoints()).not.toContain(strangerEndpoint);
    expect(broker.stats.run).toBe(runBefore);
    expect(dialled).toBe(0);
  });

  it('fails a server-streaming call the same way', async () => {
    const client = bankClient([broker.endpoint]);
    const err = await callError(serverStream(client, 'StreamStatements', { accountId: 's', count: 3 }));
    refused(err);
    expect(client.peerbroker.pool.endpoints()).not.toContain(strangerEndpoint);
    expect(dialled).toBe(0);
  });

  it('fails a client-streaming call the same way, before any held message is replayed', async () => {
    const client = bankClient([broker.endpoint]);
    const err = await new Promise<ServiceError | undefined>((resolve) => {
      type DepositBatch = (cb: (e: ServiceError | null) => void) => { write(m: object): void; end(): void };
      const call = (client as unknown as Record<string, DepositBatch>).DepositBatch((e) => resolve(e ?? undefined));
      call.write({ accountId: 'c', amountCents: 1 });
      call.end();
    });
    refused(err!);
    expect(client.peerbroker.pool.endpoints()).not.toContain(strangerEndpoint);
    expect(dialled).toBe(0);
  });

  it('still refuses after the member list was refreshed: the stranger is in no Members answer', async () => {
    const client = bankClient([broker.endpoint], { membersRefreshMs: 50 });
    await new Promise((r) => setTimeout(r, 200));
    expect(client.peerbroker.members.all()).toEqual([broker.endpoint]);
    const err = await callError(unary(client, 'GetBalance', { accountId: 'b' }));
    refused(err);
    expect(dialled).toBe(0);
  });
});
