import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { IdentityTakeover } from '../../../src/broker/identity-takeover';
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
 * A takeover for `SELF`, a lost node `lost` at `lostEndpoint`, and a live peer `other`
 * that ranks above or below `SELF` for that endpoint.
 */
async function setup(otherAboveSelf: boolean) {
  const lostEndpoint = `127.0.0.1:${await freePort()}`;
  const other = peerId(lostEndpoint, otherAboveSelf);
  const view = new PeerView({ cluster: 'c', selfId: SELF, offlineAfterPeriods: 3, forgetAfterMs: 60_000, maxClockSkewMs: 30_000 });
  const server = new grpc.Server();
  servers.push(server);
  const takeover = new IdentityTakeover(SELF, server, grpc.ServerCredentials.createInsecure(), view, { allow: true, onLeave: false }, createLogger({ level: 'silent' }), {
    changed: () => {},
    connected: () => true,
    claimGraceMs: () => GRACE,
  });
  takeovers.push(takeover);
  let seq = 0;
  let clock = performance.now();
  const feed = (nodeId: string, endpoint: string, over: Partial<LoadReport> = {}) =>
    view.apply(report(nodeId, endpoint, ++seq, over), nodeId, clock, Date.now());
  const otherEndpoint = '127.0.0.9:1';
  feed('lost', lostEndpoint);
  feed(other, otherEndpoint);
  /** The lost node goes silent; the other peer keeps reporting. */
  const loseIt = () => {
    clock += 3 * PERIOD + 1;
    feed(other, otherEndpoint);
    view.sweep(clock);
  };
  return { lostEndpoint, other, otherEndpoint, feed, loseIt, takeover };
}

describe('IdentityTakeover', () => {
  it('adopts a lost endpoint at once when this node ranks first', async () => {
    const t = await setup(false);
    t.loseIt();
    await waitFor(() => t.takeover.endpoints().includes(t.lostEndpoint), 1_000, 5, 'adoption');
    await waitFor(() => accepts(t.lostEndpoint), 1_000, 10, 'the endpoint to accept connections');
  });

  it('claims the endpoint after the grace time when the survivor ranked above it never does', async () => {
    const t = await setup(true);
    t.loseIt();
    const lostAt = Date.now();
    await sleep(GRACE / 2);
    expect(t.takeover.endpoints()).toEqual([]);
    await waitFor(() => t.takeover.endpoints().includes(t.lostEndpoint), 2_000, 5, 'the fallback claim');
    expect(Date.now() - lostAt).toBeGreaterThanOrEqual(GRACE - 5);
    await waitFor(() => accepts(t.lostEndpoint), 1_000, 10, 'the endpoint to accept connections');
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
    await waitFor(() => above.takeover.endpoints().includes(above.lostEndpoint), 2_000, 5, 'the fallback claim');
    above.feed(above.other, above.otherEndpoint, { endpoints: [above.otherEndpoint, above.lostEndpoint] });
    above.takeover.reconcile();
    expect(above.takeover.endpoints()).toEqual([]);
    await waitFor(async () => !(await accepts(above.lostEndpoint)), 3_000, 20, 'the endpoint to be released');

    const below = await setup(false);
    below.loseIt();
    await waitFor(() => below.takeover.endpoints().includes(below.lostEndpoint), 1_000, 5, 'adoption');
    below.feed(below.other, below.otherEndpoint, { endpoints: [below.otherEndpoint, below.lostEndpoint] });
    below.takeover.reconcile();
    expect(below.takeover.endpoints()).toEqual([below.lostEndpoint]);
  });
});
