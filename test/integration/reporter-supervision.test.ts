import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../src';
import { MAX_REPORTER_RESTARTS, type WorkerControlPlane } from '../../src/cluster/worker-control-plane';
import { bankClient, cleanupBrokers, members, sleep, startBroker, startBrokerProcess, unary, waitFor, waitForMembers, type BrokerProcess } from '../helpers/brokers';
import { natsForSuite } from '../helpers/suite';

// A new thread starts in some 100 ms, several hundred on a busy machine: the default period
// leaves room (off-line after 1.5 s), and a late report shows as UNKNOWN, not as a verdict.
const PERIOD_MS = 500;

/** The test hook on an in-process broker's reporter thread. */
function reporterOf(b: Broker): WorkerControlPlane {
  return (b as unknown as { control: WorkerControlPlane }).control;
}

/** A logger that keeps every line. */
function capturingLogger() {
  const lines: string[] = [];
  return { logger: pino({ level: 'info' }, { write: (s: string) => void lines.push(s) }), lines };
}

/** Polls `observer`'s view of `nodeId` for `ms`; returns every status seen. */
async function watch(observer: string, nodeId: string, ms: number): Promise<string[]> {
  const seen: string[] = [];
  const until = Date.now() + ms;
  while (Date.now() < until) {
    seen.push((await members(observer)).find((m) => m.nodeId === nodeId)?.status ?? 'MISSING');
    await sleep(PERIOD_MS / 4);
  }
  return seen;
}

describe('a supervised reporter thread (an in-process broker watched by a broker process)', () => {
  const nats = natsForSuite();
  let observer: BrokerProcess | undefined;

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail' && observer) console.log(`--- observer ---\n${observer.output()}`);
    await cleanupBrokers();
  });

  afterAll(async () => {
    await observer?.kill9();
  });

  it('restarts a reporter thread that died, at once: its peers never see the node go silent, and adopt nothing', async () => {
    const log = capturingLogger();
    const n1 = await startBroker({ nodeId: 'n1', nats: [nats().url], cluster: 'reporter', periodMs: PERIOD_MS, logger: log.logger });
    observer = await startBrokerProcess({ nodeId: 'n2', nats: [nats().url], cluster: 'reporter', periodMs: PERIOD_MS });
    await waitForMembers(observer.endpoint, { n1: 'ONLINE', n2: 'ONLINE' });
    await sleep(5 * PERIOD_MS); // long enough on-line to be adopted from, were it lost

    await reporterOf(n1).terminateReporter();
    const seen = await watch(observer.endpoint, 'n1', 4 * PERIOD_MS);
    expect(seen.filter((s) => s === 'OFFLINE' || s === 'MISSING')).toEqual([]);
    expect(log.lines.join('')).toMatch(/reporter thread died \(exited with code 1\); restarted/);
    expect((await members(observer.endpoint)).find((m) => m.nodeId === 'n2')?.endpoints).toEqual([observer.endpoint]);
    expect(observer.output()).not.toMatch(/peer off-line|adopt/);
    // Its own view still works: it hears the peer through the new thread.
    await waitFor(() => n1.members().find((m) => m.nodeId === 'n2' && m.status === 'ONLINE'), 2_000, 20, 'n1 to hear n2');
  });

  it(`reports from the main thread once the reporter died more than ${MAX_REPORTER_RESTARTS} times in a minute`, async () => {
    const log = capturingLogger();
    const n3 = await startBroker({ nodeId: 'n3', nats: [nats().url], cluster: 'reporter', periodMs: PERIOD_MS, logger: log.logger });
    await waitFor(async () => (await members(observer!.endpoint)).find((m) => m.nodeId === 'n3')?.status === 'ONLINE', 15_000, 50, 'n2 to see n3');
    for (let i = 0; i <= MAX_REPORTER_RESTARTS; i++) {
      await waitFor(() => (reporterOf(n3) as unknown as { worker?: unknown }).worker, 5_000, 10, 'a running reporter thread');
      await reporterOf(n3).terminateReporter();
    }
    await waitFor(() => log.lines.some((l) => l.includes('reporting from the main thread')), 2_000, 20, 'the main thread to take over');
    const seen = await watch(observer!.endpoint, 'n3', 4 * PERIOD_MS);
    expect(seen.filter((s) => s === 'OFFLINE' || s === 'MISSING')).toEqual([]);
    expect(observer!.output()).not.toMatch(/peer off-line|adopt/);
    // It still serves, and sees its peer.
    expect((await unary(bankClient([n3.endpoint]), 'GetBalance', { accountId: 'r' })).servedBy).toBe('n3');
    await waitFor(() => n3.members().find((m) => m.nodeId === 'n2' && m.status === 'ONLINE'), 2_000, 20, 'n3 to hear n2');
  });
});
