import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_PLANE_HEALTH } from '../../src/broker/node-health';
import {
  bankClient,
  cleanupBrokers,
  members,
  plainSecuritiesClient,
  sleep,
  startBroker,
  startBrokerProcesses,
  statusMap,
  unary,
  waitFor,
  waitForMembers,
  type BrokerProcess,
} from '../helpers/brokers';
import { startNatsServer } from '../helpers/nats';
import { natsForSuite } from '../helpers/suite';

const PERIOD_MS = 200;

// The standard health service, loaded from the proto that grpc-health-check ships.
const healthProtoPath = path.join(path.dirname(require.resolve('grpc-health-check/package.json')), 'proto', 'health', 'v1', 'health.proto');
const HealthClient = (
  grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: String })) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  }
).grpc.health.v1.Health;

function check(endpoint: string, service = ''): Promise<string> {
  const c = new HealthClient(endpoint, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) =>
    c.Check({ service }, { deadline: Date.now() + 2_000 }, (err: grpc.ServiceError | null, res?: { status: string }) => {
      c.close();
      if (err) reject(err);
      else resolve(res!.status);
    }),
  );
}

describe('busy is not dead (broker processes)', () => {
  const nats = natsForSuite();
  let n1: BrokerProcess;
  let n2: BrokerProcess;

  beforeAll(async () => {
    [n1, n2] = await startBrokerProcesses(['n1', 'n2'], { nats: [nats().url], cluster: 'busy', periodMs: PERIOD_MS });
  });

  afterAll(async () => {
    await Promise.all([n1, n2].map((b) => b?.kill9()));
  });

  it('keeps reporting while a handler blocks its event loop for 3 s: peers see it loaded, never off-line', async () => {
    const client = plainSecuritiesClient(n1.endpoint);
    const audit = unary(client, 'Audit', { busyMs: 3_000 }, { timeoutMs: 10_000 });
    const seen: Array<{ status: string; load: number }> = [];
    const until = Date.now() + 3_000;
    while (Date.now() < until) {
      const m = (await members(n2.endpoint)).find((x) => x.nodeId === 'n1');
      seen.push({ status: m?.status ?? 'MISSING', load: m?.load ?? -1 });
      await sleep(50);
    }
    const result = await audit;
    expect(result.servedBy).toBe('n1');
    // Fifteen periods passed with n1's main loop blocked; three would make it off-line.
    expect(seen.filter((s) => s.status === 'OFFLINE' || s.status === 'MISSING')).toEqual([]);
    expect(Math.max(...seen.map((s) => s.load))).toBe(1);
    // Right after the block its own self-check may call it UNHEALTHY for a period (a 3 s loop
    // delay); it is ONLINE again once a period passes without one.
    await waitFor(async () => statusMap(await members(n2.endpoint)).n1 === 'ONLINE', 5 * PERIOD_MS + 2_000, 50, 'n1 ONLINE again');
    expect(statusMap(await members(n2.endpoint)).n1).toBe('ONLINE');
  });
});

describe('self-diagnostics and the standard health service (in-process brokers)', () => {
  const nats = natsForSuite();

  afterEach(async () => {
    await cleanupBrokers();
  });

  it('answers grpc.health.v1.Health SERVING for the node, its services and the control plane', async () => {
    const b = await startBroker({ nodeId: 'h1', nats: [nats().url], cluster: 'health-a', periodMs: PERIOD_MS });
    await waitFor(async () => (await check(b.endpoint, CONTROL_PLANE_HEALTH)) === 'SERVING', 5_000, 50, 'control plane SERVING');
    expect(await check(b.endpoint)).toBe('SERVING');
    expect(await check(b.endpoint, 'bank.Banking')).toBe('SERVING');
  });

  it('turns UNHEALTHY when its probe fails: peers send it nothing, it sends its calls away, health says NOT_SERVING', async () => {
    let healthy = true;
    const sick = await startBroker({
      nodeId: 's1',
      nats: [nats().url],
      cluster: 'health-b',
      periodMs: PERIOD_MS,
      healthProbe: () => healthy,
    });
    const other = await startBroker({ nodeId: 's2', nats: [nats().url], cluster: 'health-b', periodMs: PERIOD_MS });
    await waitForMembers(other.endpoint, { s1: 'ONLINE', s2: 'ONLINE' });
    healthy = false;
    await waitForMembers(other.endpoint, { s1: 'UNHEALTHY', s2: 'ONLINE' }, 5_000);
    expect(await check(sick.endpoint)).toBe('NOT_SERVING');
    expect(sick.status).toBe('UNHEALTHY');

    // Following clients of the sick node are sent to the healthy one, even at no load.
    const client = bankClient([sick.endpoint]);
    for (let i = 0; i < 5; i++) expect((await unary(client, 'GetBalance', { accountId: 'a' })).servedBy).toBe('s2');

    healthy = true;
    await waitForMembers(other.endpoint, { s1: 'ONLINE', s2: 'ONLINE' }, 5_000);
    expect(await check(sick.endpoint)).toBe('SERVING');
  });

  it('keeps serving locally without NATS, says so in health, and rejoins when NATS returns', async () => {
    const own = await startNatsServer();
    const a = await startBroker({ nodeId: 'x1', nats: [own.url], cluster: 'health-c', periodMs: PERIOD_MS, threshold: 0, margin: 0 });
    const b = await startBroker({ nodeId: 'x2', nats: [own.url], cluster: 'health-c', periodMs: PERIOD_MS });
    await waitForMembers(a.endpoint, { x1: 'ONLINE', x2: 'ONLINE' });
    await own.kill9();
    await waitFor(async () => (await check(a.endpoint, CONTROL_PLANE_HEALTH)) === 'NOT_SERVING', 5_000, 50, 'control plane NOT_SERVING');
    await sleep(3 * PERIOD_MS);
    // Threshold and margin 0 would send every call away, but x2's reports are stale: all run here.
    const client = bankClient([a.endpoint]);
    for (let i = 0; i < 5; i++) expect((await unary(client, 'GetBalance', { accountId: 'a' })).servedBy).toBe('x1');
    expect(await check(a.endpoint)).toBe('SERVING');

    await own.restart();
    await waitForMembers(a.endpoint, { x1: 'ONLINE', x2: 'ONLINE' }, 10_000);
    await waitFor(async () => (await check(a.endpoint, CONTROL_PLANE_HEALTH)) === 'SERVING', 10_000, 50, 'control plane SERVING again');
    await waitFor(async () => (await unary(client, 'GetBalance', { accountId: 'a' })).servedBy === 'x2', 5_000, 50, 'redirects to x2 again');
    expect(b.status).toBe('ONLINE');
    await own.stop();
  });
});
