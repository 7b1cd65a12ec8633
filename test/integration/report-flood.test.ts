import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSubject } from '../../src';
import {
  brokerStatus,
  members,
  plainBankClient,
  sleep,
  statusMap,
  unary,
  waitFor,
} from '../helpers/brokers';
import { secretFile } from '../helpers/certs';
import { brokerProcessesForSuite, natsForSuite } from '../helpers/suite';

// The default period: a peer is off-line after 1.5 s of silence.
const PERIOD_MS = 500;
/** Messages per second and how long: bounded, about what one publisher on loopback sends here. */
const FLOOD_RATE = 20_000;
const FLOOD_MS = 1_500;
/** Bounds on a caller and on the watch, whatever happens to the flag that stops them. */
const MAX_CALLS = 20_000;
const MAX_LOOP_MS = 30_000;

/** A loop run until `stop()`, `max` rounds, or MAX_LOOP_MS, whichever comes first. */
function boundedLoop(max: number, round: () => Promise<void>) {
  let stopped = false;
  const deadline = Date.now() + MAX_LOOP_MS;
  const done = (async () => {
    for (let i = 0; i < max && !stopped && Date.now() < deadline; i++) await round();
  })();
  return {
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

/** Calls `GetBalance` on `endpoint` from a plain client, one after the other, and notes when each answer came. */
function caller(endpoint: string) {
  const client = plainBankClient(endpoint);
  const served: number[] = [];
  const failed: string[] = [];
  const loop = boundedLoop(MAX_CALLS, async () => {
    try {
      await unary(client, 'GetBalance', { accountId: 'f' }, { timeoutMs: 5_000 });
      served.push(Date.now());
    } catch (err) {
      failed.push((err as Error).message);
    }
  });
  return { served, failed, stop: loop.stop };
}

/** Publishes garbage on the load subjects, half on the real nodes' subjects, half on made-up ones, at FLOOD_RATE for FLOOD_MS. */
async function flood(nc: NatsConnection, cluster: string): Promise<number> {
  const garbage = Array.from({ length: 32 }, (_, i) => randomBytes(40 + i * 4));
  const started = Date.now();
  let sent = 0;
  while (Date.now() - started < FLOOD_MS) {
    const due = Math.floor(((Date.now() - started) / 1000) * FLOOD_RATE);
    for (; sent < due; sent++) {
      const node = sent % 2 === 0 ? `n${1 + ((sent >> 1) % 2)}` : `x${sent % 4096}`;
      nc.publish(loadSubject(cluster, node), garbage[sent % garbage.length]);
    }
    await sleep(5);
  }
  await nc.flush();
  return sent;
}

describe('a flood of garbage on the load subjects (two broker processes, a raw NATS publisher)', () => {
  const nats = natsForSuite();

  describe.each([
    ['without a cluster key', false],
    ['with a cluster key', true],
  ])('%s', (_what, keyed) => {
    const cluster = keyed ? 'flood-keyed' : 'flood';
    const nodes = brokerProcessesForSuite(['n1', 'n2'], () => ({
      nats: [nats().url],
      cluster,
      periodMs: PERIOD_MS,
      extraArgs: keyed ? ['--cluster-key-file', secretFile('cluster.key', `${randomBytes(32).toString('hex')}\n`)] : [],
    }));
    let nc: NatsConnection | undefined;
    const loops: Array<{ stop(): Promise<void> }> = [];

    afterEach(async () => {
      await Promise.all(loops.splice(0).map((l) => l.stop()));
      await nc?.close();
    });

    it('every node keeps serving, nobody goes off-line or adopts, and every message is counted as dropped', async () => {
      nc = await connect({ servers: nats().url, name: 'flood' });
      const callers = nodes().map((b) => caller(b.endpoint));
      loops.push(...callers);
      const views: Array<Record<string, string>> = [];
      loops.push(
        boundedLoop(MAX_LOOP_MS / (PERIOD_MS / 2), async () => {
          for (const b of nodes()) views.push(statusMap(await members(b.endpoint, 10_000)));
          await sleep(PERIOD_MS / 2);
        }),
      );
      await waitFor(() => callers.every((c) => c.served.length > 0), 10_000, 20, 'both nodes to answer a call');
      const before = await Promise.all(nodes().map(async (b) => Number((await brokerStatus(b.endpoint)).reportsDropped)));

      const from = Date.now();
      const sent = await flood(nc, cluster);
      const to = Date.now();
      // A peer silent through the flood would be judged within 3 periods of its last report.
      await sleep(2 * PERIOD_MS);
      await Promise.all(loops.splice(0).map((l) => l.stop()));

      for (const [i, c] of callers.entries()) {
        expect(c.failed, `${nodes()[i].nodeId}: failed calls`).toEqual([]);
        // Calls kept being answered during the flood (the old main thread went silent for seconds).
        expect(c.served.filter((t) => t >= from && t <= to).length, `${nodes()[i].nodeId}: calls served during the flood`).toBeGreaterThan(0);
      }
      // Reports of the real nodes were found among the garbage on their own subjects: nobody went
      // off-line (on this shared machine a report may come late, UNKNOWN, but never a verdict).
      expect(views.filter((v) => v.n1 === 'OFFLINE' || v.n2 === 'OFFLINE' || !v.n1 || !v.n2)).toEqual([]);
      for (const b of nodes()) expect(b.output()).not.toMatch(/peer off-line|adopt/);
      // Every message of the flood is counted (a real report may be among the drops now and then).
      const droppedSince = () => Promise.all(nodes().map(async (b, i) => Number((await brokerStatus(b.endpoint)).reportsDropped) - before[i]));
      await waitFor(async () => (await droppedSince()).every((d) => d >= sent && d < sent + 5), 5_000, 50, `both nodes to count ${sent} dropped messages`).catch(async (err: Error) => {
        throw new Error(`${err.message}: counted ${JSON.stringify(await droppedSince())}, ${JSON.stringify((await brokerStatus(nodes()[0].endpoint)).reportsDroppedByReason)}`);
      });
      const reasons = (await brokerStatus(nodes()[0].endpoint)).reportsDroppedByReason;
      expect(Number(reasons[keyed ? 'unsigned' : 'malformed'])).toBeGreaterThan(0);
    });
  });
});
