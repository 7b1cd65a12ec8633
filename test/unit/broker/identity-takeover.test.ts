import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ADOPT_AFTER_REPORTS, IdentityTakeover, MAX_ADOPTED, type TakeoverOptions } from '../../../src/broker/identity-takeover';
import { TakeoverAddresses } from '../../../src/broker/takeover-addresses';
import { PeerView } from '../../../src/cluster/peer-view';
import type { LoadReport } from '../../../src/cluster/report-codec';
import { rendezvousRanking } from '../../../src/cluster/rendezvous';
import { createLogger } from '../../../src/log';
import { sleep, waitFor } from '../../helpers/brokers';
import { freePort } from '../../helpers/ports';

// The takeover module with a real grpc-js server binding real loopback ports; only
// the peers' reports are made up here, fed to a real PeerView.

const PERIOD = 50;
const GRACE = 2 * PERIOD;
const SELF = 'self';

function report(nodeId: string, endpoint: string, seq: number, over: Partial<LoadReport> = {}): LoadReport {
  return {
    cluster: 'c',
    nodeId,
    endpoint,
    incarnation: 1,
    seq,
    sentAtMs: Date.now(),
    load: 0.1,
    inFlight: 0,
    capacity: 64,
    status: 'ONLINE',
    services: ['bank.Banking'],
    endpoints: [endpoint],
    periodMs: PERIOD,
    queued: 0,
    loopDelayMs: 1,
    callsRun: 0,
    callsRedirected: 0,
    maxQueue: 256,
    takeover: true,
    ...over,
  };
}

/** True when something accepts TCP connections on host:port. */
function accepts(endpoint: string): Promise<boolean> {
  const [host, port] = endpoint.split(':');
  return new Promise((resolve) => {
    const s = net.connect({ host, port: Number(port) });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A peer id that outranks (or not) `SELF` for `endpoint` among `[SELF, id]`. */
function peerId(endpoint: string, aboveSelf: boolean): string {
  for (let i = 0; ; i++) {
    const id = `p${i}`;
    if ((rendezvousRanking(endpoint, [SELF, id])[0] === id) === aboveSelf) return id;
  }
}

const servers: grpc.Server[] = [];
const takeovers: IdentityTakeover[] = [];

afterEach(async () => {
  await Promise.all(takeovers.splice(0).map((t) => t.stop()));
  for (const s of servers.splice(0)) s.forceShutdown();
});

/**
 * A takeover for `SELF`, a lost node `lost` at `lostEndpoint` that reported for
 * `onlinePeriods` periods, and a live peer `other` that ranks above or below `SELF` for
 * that endpoint. `opts` and `lostOver` change the takeover's options and the lost node's reports.
 */
async function setup(
  otherAboveSelf: boolean,
  { opts = {}, lostOver = {}, otherOver = {}, onlinePeriods = ADOPT_AFTER_REPORTS - 1 }: { opts?: Partial<TakeoverOptions>; lostOver?: Partial<LoadReport>; otherOver?: Partial<LoadReport>; onlinePeriods?: number } = {},
) {
  const lostEndpoint = lostOver.endpoint ?? `127.0.0.1:${await freePort()}`;
  const other = peerId(lostEndpoint, otherAboveSelf);
  const view = new PeerView({ offlineAfterPeriods: 3, forgetAfterMs: 60_000 });
  const server = new grpc.Server();
  servers.push(server);
  const changes: string[][] = [];
  const options: TakeoverOptions = { allow: true, onLeave: false, addresses: TakeoverAddresses.of(['127.0.0.0/8']), ...opts };
  const takeover: IdentityTakeover = new IdentityTakeover(SELF, server, grpc.ServerCredentials.createInsecure(), view, options, createLogger({ level: 'silent' }), {
    changed: () => changes.push(takeover.endpoints()),
    connected: () => true,
    claimGraceMs: () => GRACE,
    periodMs: () => PERIOD,
    selfEndpoint: () => '127.0.0.8:1',
  });
  takeovers.push(takeover);
  let seq = 0;
  let clock = performance.now();
  const feed = (nodeId: string, endpoint: string, over: Partial<LoadReport> = {}) =>
    view.apply(report(nodeId, endpoint, ++seq, nodeId === other ? { ...otherOver, ...over } : over), clock);
  const otherEndpoint = '127.0.0.9:1';
  for (let i = 0; i <= onlinePeriods; i++) {
    feed('lost', lostEndpoint, lostOver);
    feed(other, otherEndpoint);
    if (i < onlinePeriods) clock += PERIOD;
  }
  /** The lost node goes silent; the other peer keeps reporting. */
  const loseIt = () => {
    clock += 3 * PERIOD + 1;
    feed(other, otherEndpoint);
    view.sweep(clock);
  };
  return { lostEndpoint, other, otherEndpoint, feed, loseIt, takeover, changes, view };
}

describe('IdentityTakeover', () => {
  it('adopts a lost endpoint at once when this node ranks first', async () => {
    const t = await setup(false);
    t.loseIt();
    await waitFor(() => t.takeover.endpoints().includes(t.lostEndpoint), 3_000, 5, 'adoption');
    await waitFor(() => accepts(t.lostEndpoint), 3_000, 10, 'the endpoint to accept connections');
  });

  it('claims the endpoint after the grace time when the survivor ranked above it never does', async () => {
    const t = await setup(true);
    t.loseIt();
    const lostAt = Date.now();
    await sleep(GRACE / 2);
    expect(t.takeover.endpoints()).toEqual([]);
    await waitFor(() => t.takeover.endpoints().includes(t.lostEndpoint), 5_000, 5, 'the fallback claim');
    expect(Date.now() - lostAt).toBeGreaterThanOrEqual(GRACE - 5);
    await waitFor(() => accepts(t.lostEndpoint), 3_000, 10, 'the endpoint to accept connections');
  });

  it('does not claim the endpoint of a node that came back within the grace time', async () => {
    const t = await setup(true);
    t.loseIt();
    t.feed('lost', t.lostEndpoint, { incarnation: 2 });
    await sleep(3 * GRACE);
    expect(t.takeover.endpoints()).toEqual([]);
  });

  it('leaves the endpoint to the survivor ranked above it that advertises it in time, and takes it (not that peer\'s own) when that peer leaves cleanly', async () => {
    const t = await setup(true);
    t.loseIt();
    t.feed(t.other, t.otherEndpoint, { endpoints: [t.otherEndpoint, t.lostEndpoint] });
    await sleep(3 * GRACE);
    expect(t.takeover.endpoints()).toEqual([]);
    expect(await accepts(t.lostEndpoint)).toBe(false);
    t.feed(t.other, t.otherEndpoint, { status: 'LEAVING', endpoints: [t.otherEndpoint, t.lostEndpoint] });
    await waitFor(() => accepts(t.lostEndpoint), 2_000, 10, 'the adopted endpoint to move here');
    expect(t.takeover.endpoints()).toEqual([t.lostEndpoint]);
  });

  it('lets go of an adopted endpoint when a peer ranked above it serves it too, and keeps it against one ranked below', async () => {
    const above = await setup(true);
    above.loseIt();
    await waitFor(() => above.takeover.endpoints().includes(above.lostEndpoint), 5_000, 5, 'the fallback claim');
    above.feed(above.other, above.otherEndpoint, { endpoints: [above.otherEndpoint, above.lostEndpoint] });
    above.takeover.reconcile();
    expect(above.takeover.endpoints()).toEqual([]);
    await waitFor(async () => !(await accepts(above.lostEndpoint)), 3_000, 20, 'the endpoint to be released');

    const below = await setup(false);
    below.loseIt();
    await waitFor(() => below.takeover.endpoints().includes(below.lostEndpoint), 3_000, 5, 'adoption');
    below.feed(below.other, below.otherEndpoint, { endpoints: [below.otherEndpoint, below.lostEndpoint] });
    below.takeover.reconcile();
    expect(below.takeover.endpoints()).toEqual([below.lostEndpoint]);
  });

  it('never adopts an unspecified address, a host name, or an address outside the takeover addresses', async () => {
    for (const host of ['0.0.0.0', '[::]', 'localhost', '10.1.2.3']) {
      const endpoint = `${host}:${await freePort()}`;
      const t = await setup(false, { lostOver: { endpoint, endpoints: [endpoint] } });
      t.loseIt();
      await sleep(GRACE);
      expect(t.takeover.endpoints(), endpoint).toEqual([]);
    }
    const anyLocal = await freePort();
    expect(await accepts(`127.0.0.1:${anyLocal}`)).toBe(false);
  });

  it('adopts nothing of a peer that reported only a moment, however many reports it sent', async () => {
    const t = await setup(false, { onlinePeriods: 0 });
    for (let i = 0; i < 4; i++) t.feed('lost', t.lostEndpoint);
    t.loseIt();
    await sleep(GRACE);
    expect(t.takeover.endpoints()).toEqual([]);
    expect(await accepts(t.lostEndpoint)).toBe(false);
  });

  it('does not adopt an endpoint a live peer already serves, even when it ranks first', async () => {
    const lost = `127.0.0.1:${await freePort()}`;
    const t = await setup(false, { lostOver: { endpoint: lost, endpoints: [lost] }, otherOver: { endpoints: ['127.0.0.9:1', lost] } });
    t.loseIt();
    await sleep(GRACE);
    expect(t.takeover.endpoints()).toEqual([]);
  });

  it(`adopts at most ${MAX_ADOPTED} endpoints, so its own reports stay valid`, async () => {
    const endpoints = (await Promise.all(Array.from({ length: MAX_ADOPTED + 8 }, () => freePort()))).map((p) => `127.0.0.1:${p}`);
    // The other peer does not take over: this node ranks first for every endpoint.
    const t = await setup(false, { lostOver: { endpoint: endpoints[0], endpoints }, otherOver: { takeover: false } });
    t.loseIt();
    await waitFor(() => t.takeover.endpoints().length === MAX_ADOPTED, 5_000, 10, `${MAX_ADOPTED} adoptions`);
    await sleep(GRACE);
    expect(t.takeover.endpoints()).toHaveLength(MAX_ADOPTED);
  });

  it('adopts its own endpoints while it waits on many that a survivor ranked above it serves', async () => {
    // The lost node had MAX_ADOPTED endpoints for which the other survivor ranks first (it
    // serves them), then 8 for which this node does. Waiting on the first must not use up
    // this node's adoptions.
    const ports = (await Promise.all(Array.from({ length: 6 * (MAX_ADOPTED + 8) }, () => freePort()))).map((p) => `127.0.0.1:${p}`);
    const other = peerId(ports[0], true);
    const above = ports.filter((e) => rendezvousRanking(e, [SELF, other])[0] === other).slice(0, MAX_ADOPTED);
    const own = ports.filter((e) => rendezvousRanking(e, [SELF, other])[0] === SELF).slice(0, 8);
    expect([above.length, own.length]).toEqual([MAX_ADOPTED, 8]);
    const t = await setup(true, { lostOver: { endpoint: above[0], endpoints: [...above, ...own] } });
    expect(t.other).toBe(other);
    t.loseIt();
    t.feed(t.other, t.otherEndpoint, { endpoints: [t.otherEndpoint, ...above] });
    await waitFor(() => t.takeover.endpoints().length === own.length, 5_000, 10, 'its own endpoints adopted');
    expect([...t.takeover.endpoints()].sort()).toEqual([...own].sort());
  });

  it('claims the endpoint in its reports while its on-adopt hook runs, and a release waits for the hook before on-release', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-hooks-'));
    const log = path.join(dir, 'hooks.log');
    const t = await setup(false, {
      opts: { onAdopt: `sleep 0.3; echo "adopt $PEERBROKER_ENDPOINT" >> ${log}`, onRelease: `echo "release $PEERBROKER_ENDPOINT" >> ${log}` },
    });
    t.loseIt();
    // Reported at once, before the hook (slower than the claim grace) is over.
    expect(t.changes[0]).toEqual([t.lostEndpoint]);
    await sleep(GRACE);
    await t.takeover.release(t.lostEndpoint, 'test');
    expect(fs.readFileSync(log, 'utf8')).toBe(`adopt ${t.lostEndpoint}\nrelease ${t.lostEndpoint}\n`);
    expect(t.takeover.endpoints()).toEqual([]);
    expect(await accepts(t.lostEndpoint)).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs on-release after an adoption that failed once its on-adopt hook ran', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-hooks-'));
    const log = path.join(dir, 'hooks.log');
    const t = await setup(false, { opts: { onAdopt: `echo adopt >> ${log}; exit 3`, onRelease: `echo release >> ${log}` } });
    t.loseIt();
    await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8') === 'adopt\nrelease\n', 10_000, 20, 'on-release after the failed adoption');
    expect(t.takeover.endpoints()).toEqual([]);
    expect(t.changes.at(-1)).toEqual([]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('claims the endpoint itself when the survivor ranked above it claimed it and then gave up', async () => {
    const t = await setup(true);
    t.loseIt();
    t.feed(t.other, t.otherEndpoint, { endpoints: [t.otherEndpoint, t.lostEndpoint] });
    await sleep(GRACE + GRACE / 2);
    expect(t.takeover.endpoints()).toEqual([]);
    t.feed(t.other, t.otherEndpoint);
    await waitFor(() => t.takeover.endpoints().includes(t.lostEndpoint), 3_000, 5, 'the claim after the other gave up');
  });
});

