import * as http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src';
import { holdSlots, sleep, startBroker, startBrokerProcess, waitFor, type BrokerProcess, type BrokerProcessOptions } from '../helpers/brokers';
import { rawSocket, rawSockets, type RawSocket } from '../helpers/sockets';
import { natsForSuite } from '../helpers/suite';

const PERIOD_MS = 200;
const CLUSTER = 'limits';

/** An HTTP/2 session to `endpoint`, resolved once the server's SETTINGS arrived. */
function h2(endpoint: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`http://${endpoint}`);
    s.on('error', () => {});
    s.once('remoteSettings', () => resolve(s));
    s.once('error', reject);
  });
}

describe('limits on connections and calls, with real sockets', () => {
  const nats = natsForSuite();
  let observer: Broker;
  const procs: BrokerProcess[] = [];

  const start = async (nodeId: string, args: string[], more: Partial<BrokerProcessOptions> = {}) => {
    const p = await startBrokerProcess({ nodeId, nats: [nats().url], cluster: CLUSTER, periodMs: PERIOD_MS, extraArgs: args, ...more });
    procs.push(p);
    await waitFor(() => statusOf(nodeId) === 'ONLINE', 15_000, 20, `${nodeId} ONLINE in the observer's view`);
    return p;
  };
  const statusOf = (nodeId: string) => observer.members().find((m) => m.nodeId === nodeId)?.status;

  beforeAll(async () => {
    observer = await startBroker({ nodeId: 'observer', nats: [nats().url], cluster: CLUSTER, periodMs: PERIOD_MS });
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill9()));
  });

  it('holds at most max-connections connections, closing the rest at once, and is UNHEALTHY while near the cap', async () => {
    const n1 = await start('n1', ['--max-connections', '50']);
    const sockets = await rawSockets(n1.endpoint, 60);
    await sleep(300);
    expect(sockets.filter((s) => s.closed()).length).toBe(10);
    // 50 of 50: peers see it UNHEALTHY and send it nothing.
    await waitFor(() => statusOf('n1') === 'UNHEALTHY', 5_000, 20, 'n1 UNHEALTHY in the observer view');
    expect(n1.output()).toMatch(/connections 50 of 50 \(max-connections\)/);
    for (const s of sockets) s.socket.destroy();
    await waitFor(() => statusOf('n1') === 'ONLINE', 5_000, 20, 'n1 ONLINE again once the connections are gone');
    // The cap holds again after they went: room for 50, no more.
    const again = await rawSockets(n1.endpoint, 55);
    await sleep(300);
    expect(again.filter((s) => s.closed()).length).toBe(5);
    for (const s of again) s.socket.destroy();
  });

  it('closes a connection with no call open after max-connection-idle-ms, raw or HTTP/2', async () => {
    const n2 = await start('n2', ['--max-connection-idle-ms', '300', '--keepalive-time-ms', '0']);
    const raw = await rawSocket(n2.endpoint);
    const session = await h2(n2.endpoint);
    let sessionClosed = false;
    session.on('close', () => (sessionClosed = true));
    await waitFor(() => raw.closed() && sessionClosed, 3_000, 20, 'both idle connections closed by n2');
  });

  it('closes a connection that does not answer keepalive pings within keepalive-timeout-ms, and keeps one that does', async () => {
    const n3 = await start('n3', ['--keepalive-time-ms', '200', '--keepalive-timeout-ms', '200', '--max-connection-idle-ms', '0']);
    // Speaks HTTP/2's preface and SETTINGS, then never reads again: the server's PINGs go unanswered.
    const mute = await rawSocket(n3.endpoint);
    mute.socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
    const answering = await h2(n3.endpoint);
    let answeringClosed = false;
    answering.on('close', () => (answeringClosed = true));
    await waitFor(() => mute.closed(), 3_000, 20, 'the mute connection closed by n3');
    await sleep(600); // three more ping rounds
    expect(answeringClosed).toBe(false);
    answering.close();
  });

  it('lets a connection open max-concurrent-streams calls at once, and refuses calls past max-streams on all connections', async () => {
    const n4 = await start('n4', ['--max-concurrent-streams', '8', '--max-streams', '20', '--capacity', '100']);
    const first = await h2(n4.endpoint);
    expect(first.remoteSettings.maxConcurrentStreams).toBe(8);
    first.close();

    // A plain client with 12 long calls on one connection: 8 run, the client holds back 4.
    const hold = holdSlots(n4.endpoint, 12);
    await waitFor(() => observer.members().find((m) => m.nodeId === 'n4')?.inFlight === 8, 5_000, 20, 'n4 running 8 calls');
    await sleep(3 * PERIOD_MS);
    expect(observer.members().find((m) => m.nodeId === 'n4')?.inFlight).toBe(8);
    hold.release();

    // Requests that never end (grpc-js holds them without calling a handler): 3 connections x 8.
    const sessions = await Promise.all([h2(n4.endpoint), h2(n4.endpoint), h2(n4.endpoint)]);
    const answers: Array<http2.IncomingHttpHeaders | undefined> = [];
    for (const s of sessions) {
      for (let i = 0; i < 8; i++) {
        const k = answers.push(undefined) - 1;
        const req = s.request({ ':method': 'POST', ':path': '/bank.Banking/GetBalance', 'content-type': 'application/grpc', te: 'trailers' }, { endStream: false });
        req.on('error', () => {});
        req.on('response', (h) => (answers[k] = h));
      }
    }
    await waitFor(() => answers.filter((h) => h !== undefined).length === 4, 3_000, 20, '4 calls answered at once');
    await sleep(300);
    const refused = answers.filter((h) => h !== undefined);
    expect(refused).toHaveLength(4);
    for (const h of refused) {
      expect(h!['grpc-status']).toBe('8');
      expect(decodeURIComponent(String(h!['grpc-message']))).toBe("peerbroker: node 'n4' has 20 calls open, its limit (max-streams); the call did not run");
    }
    // 20 open calls of 20: UNHEALTHY until they go.
    await waitFor(() => statusOf('n4') === 'UNHEALTHY', 5_000, 20, 'n4 UNHEALTHY');
    for (const s of sessions) s.destroy();
    await waitFor(() => statusOf('n4') === 'ONLINE', 5_000, 20, 'n4 ONLINE again');
  });

  it('is UNHEALTHY while its open files near the process limit, whatever else it holds', async () => {
    const n5 = await start('n5', ['--max-connections', '1000'], { openFileLimit: 256 });
    // Each connection is a file: open them until the node says it is near its limit (90%: 231), at most 240.
    const sockets: RawSocket[] = [];
    for (let i = 0; i < 240 && statusOf('n5') === 'ONLINE'; i++) {
      sockets.push(await rawSocket(n5.endpoint));
      if (i >= 150 && i % 10 === 0) await sleep(2 * PERIOD_MS);
    }
    await waitFor(() => statusOf('n5') === 'UNHEALTHY', 5_000, 20, 'n5 UNHEALTHY');
    expect(n5.output()).toMatch(/open files \d+ of 256 \(ulimit -n\)/);
    for (const s of sockets) s.socket.destroy();
    await waitFor(() => statusOf('n5') === 'ONLINE', 5_000, 20, 'n5 ONLINE again');
  });
});
