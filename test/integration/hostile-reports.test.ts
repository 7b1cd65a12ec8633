import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSubject, type MemberInfo } from '../../src';
import { decodeReport, encodeReport, isRejected, MAX_REPORT_BYTES, type LoadReport } from '../../src/cluster/report-codec';
import {
  bankClient,
  brokerStatus,
  fakeReport,
  members,
  sleep,
  startBrokerProcesses,
  unary,
  waitFor,
  waitForMembers,
  type BrokerProcess,
} from '../helpers/brokers';
import { natsForSuite } from '../helpers/suite';

const CLUSTER = 'hostile';
const PERIOD_MS = 200;

/** What must not change: who is there, in what state, where, hosting what. */
function shape(list: readonly MemberInfo[]) {
  return list
    .map((m) => ({ nodeId: m.nodeId, status: m.status, endpoint: m.endpoint, endpoints: m.endpoints, services: [...m.services].sort() }))
    .sort((a, b) => a.nodeId.localeCompare(b.nodeId));
}

describe('hostile and broken load reports (three broker processes)', () => {
  const nats = natsForSuite();
  let nodes: BrokerProcess[] = [];
  let nc: NatsConnection;
  const captured: Uint8Array[] = [];

  const dropped = async () =>
    Promise.all(nodes.map(async (b) => Number((await brokerStatus(b.endpoint)).reportsDropped)));

  beforeAll(async () => {
    nodes = await startBrokerProcesses(['n1', 'n2', 'n3'], {
      nats: [nats().url],
      cluster: CLUSTER,
      capacity: 4,
      periodMs: PERIOD_MS,
      env: { BANK_WORK_MS: '5' },
    });
    nc = await connect({ servers: nats().url, name: 'hostile-test' });
    nc.subscribe(loadSubject(CLUSTER, 'n2'), { callback: (err, msg) => !err && captured.push(msg.data) });
    await waitFor(() => captured.length >= 3, 5_000, 20, 'three of n2\'s reports on the wire');
  });

  afterAll(async () => {
    await nc?.close();
    await Promise.all(nodes.map((b) => b.kill9()));
  });

  it('drops garbage, truncated, foreign, mislabelled, replayed and future reports and changes nothing', async () => {
    const [n1] = nodes;
    const before = shape(await waitForMembers(n1.endpoint, { n1: 'ONLINE', n2: 'ONLINE', n3: 'ONLINE' }));
    const droppedBefore = await dropped();

    const real = decodeReport(captured[captured.length - 1]);
    if (isRejected(real)) throw new Error(`a real report of n2 did not decode: ${real.message}`);
    const fresh = (over: Partial<LoadReport>) =>
      encodeReport({ ...real, incarnation: real.incarnation + 1, seq: 1, sentAtMs: Date.now(), ...over });
    const messages: Array<[subjectNode: string, data: Uint8Array]> = [];
    const send = (node: string, data: Uint8Array) => messages.push([node, data]);

    // Garbage.
    send('n2', new Uint8Array(0));
    send('n2', Buffer.from('deadbeef'.repeat(16), 'hex'));
    send('n2', Buffer.from(JSON.stringify({ nodeId: 'n2', load: 0, status: 'LEAVING' })));
    send('n2', new Uint8Array(MAX_REPORT_BYTES + 1).fill(0x0a));
    send('n9', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
    // Truncated copies of a real report, cut at every length.
    const whole = captured[0];
    for (let len = 1; len < whole.length; len++) send('n2', whole.subarray(0, len));
    // A new incarnation of n2 saying LEAVING, cut inside the endpoint, and cut right after it.
    const leaving = fresh({ status: 'LEAVING' });
    const at = Buffer.from(leaving).indexOf(Buffer.from(real.endpoint));
    send('n2', leaving.subarray(0, at + 5));
    send('n2', leaving.subarray(0, at + real.endpoint.length));
    // Another cluster's reports: for n2, and for a node this cluster does not have.
    send('n2', fresh({ cluster: 'other', load: 1, status: 'LEAVING' }));
    send('n9', encodeReport(fakeReport({ cluster: 'other', nodeId: 'n9', endpoint: '127.0.0.1:9' })));
    // The report's node id differs from the subject's token.
    send('n2', encodeReport(fakeReport({ cluster: CLUSTER, nodeId: 'n9', endpoint: '127.0.0.1:9' })));
    send('n9', fresh({ status: 'LEAVING' }));
    send('n3', fresh({ load: 1 }));
    // Replays: every captured report again, the latest one saying LEAVING, and an older incarnation.
    for (const data of captured) send('n2', data);
    send('n2', encodeReport({ ...real, status: 'LEAVING' }));
    send('n2', encodeReport({ ...real, incarnation: real.incarnation - 1, seq: real.seq + 1_000, status: 'LEAVING' }));
    // Sent from an hour in the future.
    send('n2', fresh({ sentAtMs: Date.now() + 3_600_000, status: 'LEAVING' }));

    for (const [node, data] of messages) nc.publish(loadSubject(CLUSTER, node), data);
    await nc.flush();

    // Every node got every message and dropped each one.
    await waitFor(
      async () => (await dropped()).every((d, i) => d - droppedBefore[i] >= messages.length),
      10_000,
      50,
      `every node to drop ${messages.length} reports`,
    );
    // A few periods later the view is as it was (a hijacked n2 would have gone off-line by now) ...
    await sleep(4 * PERIOD_MS);
    const after = shape(await waitForMembers(n1.endpoint, { n1: 'ONLINE', n2: 'ONLINE', n3: 'ONLINE' }, 5_000));
    expect(after).toEqual(before);
    const view = await members(n1.endpoint);
    for (const m of view.filter((m) => m.nodeId !== 'n1')) expect(m.reportAgeMs).toBeLessThan(3 * PERIOD_MS);
    // ... and nothing but the hostile messages was dropped: the real reports kept being accepted.
    expect((await dropped()).map((d, i) => d - droppedBefore[i])).toEqual([messages.length, messages.length, messages.length]);

    // Every node still serves.
    for (const b of nodes) {
      expect(b.child.exitCode).toBeNull();
      const r = await unary(bankClient([b.endpoint]), 'GetBalance', { accountId: 'after' });
      expect(r.servedBy).toBe(b.nodeId);
    }
  });
});
