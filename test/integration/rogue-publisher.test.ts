import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { connect, type NatsConnection } from 'nats';
import path from 'node:path';
import pino from 'pino';
import * as protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { loadSubject, PROTO_DIR } from '../../src';
import { ClusterKey } from '../../src/cluster/cluster-key';
import { encodeReport } from '../../src/cluster/report-codec';
import { sealReport } from '../../src/cluster/report-signing';
import { encodeConfigMessage } from '../../src/cluster/runtime-config';
import {
  bankClient,
  brokerStatus,
  fakeReport,
  holdSlots,
  members,
  sleep,
  startBroker,
  unary,
  waitFor,
  waitForLoad,
  type SlotHold,
} from '../helpers/brokers';
import { secretFile } from '../helpers/certs';
import type { NatsServerHandle } from '../helpers/nats';
import { natsForSuite } from '../helpers/suite';

const PERIOD_MS = 200;
const CALLS = 300;

/** A TCP listener standing in for an endpoint no broker owns; it counts who dials it. */
async function stranger(): Promise<{ endpoint: string; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { endpoint: `127.0.0.1:${port}`, connections: () => connections, close: () => new Promise((r) => server.close(() => r())) };
}

let signedReportType: protobuf.Type | undefined;
function envelopeType(): protobuf.Type {
  signedReportType ??= protobuf.loadSync(path.join(PROTO_DIR, 'peerbroker', 'v1', 'cluster.proto')).lookupType('peerbroker.v1.SignedReport');
  return signedReportType;
}

/** Counts of what a rogue on the load subjects sent. */
interface RogueCounts {
  plainEvil: number;
  wrongKeyEvil: number;
  forgedSignatureEvil: number;
  replayOnEvilSubject: number;
  replayOnN2Subject: number;
  plainHijackN2: number;
}

/**
 * Every 20 ms, speaks on the load subjects of `cluster` as node `evil` (load 0, at
 * `endpoint`) in every way it can without the key, and replays n2's real signed reports.
 */
function rogue(nc: NatsConnection, cluster: string, endpoint: string, captured: () => Uint8Array | undefined) {
  const counts: RogueCounts = { plainEvil: 0, wrongKeyEvil: 0, forgedSignatureEvil: 0, replayOnEvilSubject: 0, replayOnN2Subject: 0, plainHijackN2: 0 };
  const rogueKey = ClusterKey.fromSecrets([randomBytes(32).toString('hex')]);
  const incarnation = Date.now();
  let seq = 0;
  const send = (node: string, data: Uint8Array, what: keyof RogueCounts) => {
    nc.publish(loadSubject(cluster, node), data);
    counts[what]++;
  };
  const tick = () => {
    seq++;
    const evil = encodeReport(fakeReport({ cluster, nodeId: 'evil', endpoint, incarnation, seq, load: 0, capacity: 1000 }));
    send('evil', evil, 'plainEvil');
    send('evil', sealReport(evil, rogueKey), 'wrongKeyEvil');
    const real = captured();
    if (real) {
      // The cluster's real key id (read off n2's envelope) with a signature the rogue made up.
      const { keyId } = envelopeType().decode(real) as unknown as { keyId: string };
      const forged = envelopeType().encode({ report: evil, signature: randomBytes(32), alg: 'hmac-sha256', keyId }).finish();
      send('evil', forged, 'forgedSignatureEvil');
      send('evil', real, 'replayOnEvilSubject');
      send('n2', real, 'replayOnN2Subject');
    }
    // n2's identity, a newer incarnation at load 0 pointing at the stranger.
    send('n2', encodeReport(fakeReport({ cluster, nodeId: 'n2', endpoint, incarnation: Date.now() + 1, seq, load: 0 })), 'plainHijackN2');
  };
  const timer = setInterval(tick, 20);
  tick();
  return { counts, stop: () => clearInterval(timer) };
}

/** A logger that keeps every line, so the test can count n1's redirects by target. */
function capturingLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
  const redirectsTo = (node: string) =>
    lines.filter((l) => {
      const o = JSON.parse(l) as { msg?: string; to?: string };
      return o.msg === 'redirect' && o.to === node;
    }).length;
  return { logger, lines, redirectsTo };
}

async function scenario(nats: NatsServerHandle, cluster: string, keyFile: string | undefined, calls: number) {
  const target = await stranger();
  const log = capturingLogger();
  const common = { nats: [nats.url], cluster, capacity: 4, threshold: 0.5, margin: 0.2, periodMs: PERIOD_MS, workMs: 20, clusterKeyFile: keyFile };
  const n1 = await startBroker({ nodeId: 'n1', ...common, logger: log.logger });
  const n2 = await startBroker({ nodeId: 'n2', ...common });
  for (const b of [n1, n2]) await waitFor(() => b.members().filter((m) => m.status === 'ONLINE').length === 2, 15_000, 20, `${b.nodeId} to see its peer`);

  const nc = await connect({ servers: nats.url, name: `rogue-${cluster}` });
  let lastN2: Uint8Array | undefined;
  nc.subscribe(loadSubject(cluster, 'n2'), { callback: (err, msg) => !err && (lastN2 ??= msg.data) });
  await waitFor(() => lastN2, 5_000, 20, "one of n2's reports");
  // Heavy load at node 1: three of its four slots held by long streams of a plain client.
  const hold: SlotHold = holdSlots(n1.endpoint, 3);
  await waitForLoad(n2, n1, 0.75);
  const before = { dropped: { ...n1.peers.dropped } };
  const r = rogue(nc, cluster, target.endpoint, () => lastN2);
  // And on the config subject: threshold 1 would stop every redirect; a signed change from another key too.
  const rogueConfig = () => {
    const m = { version: 'rogue-1', setAt: Date.now(), values: { threshold: 1, margin: 1 } };
    nc.publish(`peerbroker.${cluster}.config`, encodeConfigMessage(m));
    nc.publish(`peerbroker.${cluster}.config`, encodeConfigMessage({ ...m, version: 'rogue-2' }, ClusterKey.fromSecrets([randomBytes(32).toString('hex')])));
  };
  // (Without a key it would win at once, so the control sends it after the calls.)
  if (keyFile) rogueConfig();

  // While the rogue speaks: watch the member lists, and call node 1 through a following stub.
  let evilListed = 0;
  let polls = 0;
  let stopped = false;
  const watching = (async () => {
    while (!stopped) {
      const views = [n1.members(), n2.members(), await members(n1.endpoint).catch(() => [])];
      polls++;
      if (views.some((v) => v.some((m) => m.nodeId === 'evil' || m.endpoint === target.endpoint))) evilListed++;
      await sleep(20);
    }
  })();
  const client = bankClient([n1.endpoint], { membersRefreshMs: 250 });
  const served: Record<string, number> = {};
  const errors: string[] = [];
  for (let i = 0; i < calls; i += 4) {
    const batch = await Promise.allSettled([0, 1, 2, 3].map((j) => unary(client, 'GetBalance', { accountId: `r${i + j}` }, { timeoutMs: 5_000 })));
    for (const b of batch) {
      if (b.status === 'fulfilled') served[b.value.servedBy ?? '?'] = (served[b.value.servedBy ?? '?'] ?? 0) + 1;
      else errors.push(String((b.reason as Error).message));
    }
  }
  stopped = true;
  await watching;
  r.stop();
  if (!keyFile) rogueConfig();
  await nc.flush();
  await sleep(2 * PERIOD_MS);
  const droppedSince = () =>
    Object.entries(n1.peers.dropped).reduce((sum, [k, v]) => sum + v - before.dropped[k as keyof typeof before.dropped], 0);
  const sentTotal = Object.values(r.counts).reduce((a, b) => a + b, 0);
  // With a key every rogue message is dropped: wait until n1 has seen them all (a busy machine lags).
  if (keyFile) await waitFor(() => droppedSince() >= sentTotal, 10_000, 20, `n1 to drop all ${sentTotal} rogue messages`);
  hold.release();
  const dropped = Object.fromEntries(
    Object.entries(n1.peers.dropped).map(([k, v]) => [k, v - before.dropped[k as keyof typeof before.dropped]]).filter(([, v]) => (v as number) > 0),
  ) as Record<string, number>;
  const result = {
    cluster,
    signed: keyFile !== undefined,
    rogueSent: { ...r.counts, total: Object.values(r.counts).reduce((a, b) => a + b, 0) },
    droppedAtN1: dropped,
    callsMadeAtN1: calls,
    served,
    errors: errors.length,
    redirectsByN1: { toN2: log.redirectsTo('n2'), toEvil: log.redirectsTo('evil') },
    stubRedirectsFollowed: client.peerbroker.stats.redirectsFollowed,
    strangerConnections: target.connections(),
    evilListedInPolls: `${evilListed}/${polls}`,
    stubDialledStranger: client.peerbroker.pool.endpoints().includes(target.endpoint),
    configDroppedAtN1: { ...n1.configDropped },
    // The same counters as the Status RPC reports them (totals since start).
    statusRpc: await brokerStatus(n1.endpoint).then((st) => ({ byReason: st.reportsDroppedByReason, config: st.configDropped })),
    thresholdAtN1: n1.currentConfig().threshold,
  };
  // The stub first: a channel it holds to the stranger would dial the next scenario's
  // stranger if the OS gives that one the same port.
  client.close();
  await nc.close();
  await Promise.all([n1.stop(), n2.stop()]);
  await target.close();
  return { result, n1, n2, firstError: errors[0] };
}

describe('a rogue publisher on the load subjects', () => {
  const nats = natsForSuite();

  it('without a cluster key wins (the control): evil is listed and calls are sent to an endpoint no broker owns', async () => {
    const { result } = await scenario(nats(), 'rogue-open', undefined, 100);
    console.log(`rogue-publisher control: ${JSON.stringify(result)}`);
    // The stub reaches the stranger by n1's redirect or by the advice that lists it.
    expect(result.stubDialledStranger).toBe(true);
    expect(result.strangerConnections).toBeGreaterThan(0);
    expect(result.evilListedInPolls.startsWith('0/')).toBe(false);
    // The rogue's config change was applied too.
    expect(result.thresholdAtN1).toBe(1);
  });

  it('with a cluster key never moves a call: evil is never listed, never dialled, and every rogue message is dropped and counted', async () => {
    const keyFile = secretFile('cluster.key', `${randomBytes(32).toString('hex')}\n`);
    const { result, firstError } = await scenario(nats(), 'rogue-signed', keyFile, CALLS);
    console.log(`rogue-publisher signed: ${JSON.stringify(result)}`);
    expect(firstError).toBeUndefined();
    expect((result.served.n1 ?? 0) + (result.served.n2 ?? 0)).toBe(CALLS);
    expect(result.redirectsByN1.toN2).toBeGreaterThan(0);
    expect(result.redirectsByN1.toEvil).toBe(0);
    expect(result.strangerConnections).toBe(0);
    expect(result.evilListedInPolls.startsWith('0/')).toBe(true);
    expect(result.stubDialledStranger).toBe(false);
    // Unsigned and badly signed messages are counted as such; the replays by the subject check.
    const sent = result.rogueSent;
    expect(result.droppedAtN1.unsigned).toBe(sent.plainEvil + sent.plainHijackN2);
    expect(result.droppedAtN1['bad-signature']).toBe(sent.wrongKeyEvil + sent.forgedSignatureEvil);
    expect(result.droppedAtN1['wrong-subject']).toBe(sent.replayOnEvilSubject);
    expect(result.droppedAtN1.replay).toBe(sent.replayOnN2Subject);
    // The rogue's config changes (unsigned, and signed with another key) were dropped too.
    expect(result.configDroppedAtN1).toEqual({ unsigned: 1, 'bad-signature': 1 });
    expect(result.statusRpc.config).toEqual({ unsigned: '1', 'bad-signature': '1' });
    expect(Number(result.statusRpc.byReason.unsigned)).toBeGreaterThanOrEqual(result.droppedAtN1.unsigned);
    expect(Number(result.statusRpc.byReason['bad-signature'])).toBeGreaterThanOrEqual(result.droppedAtN1['bad-signature']);
    expect(result.thresholdAtN1).toBe(0.5);
    const totalDropped = Object.values(result.droppedAtN1).reduce((a, b) => a + b, 0);
    expect(totalDropped).toBe(sent.total);
  });
});
