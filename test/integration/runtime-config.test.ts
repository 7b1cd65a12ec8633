import { status } from '@grpc/grpc-js';
import { connect } from 'nats';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, type Broker } from '../../src';
import { configSubject } from '../../src/cluster/runtime-config';
import {
  bankClient,
  callError,
  followMetadata,
  plainSecuritiesClient,
  runCli,
  sleep,
  startBroker,
  startBrokerGroup,
  unary,
  waitFor,
} from '../helpers/brokers';
import type { NatsServerHandle } from '../helpers/nats';
import { natsForSuite } from '../helpers/suite';

const CLUSTER = 'runtime-config';
// The period in force before the change: every live node must apply a change within it.
const PERIOD_MS = 500;

const SESSIONS = [{ enter: 'bank.Banking/OpenAccount', within: 'bank.Banking/GetBalance', exit: 'bank.Banking/Withdraw' }];
const DEDICATED = { 'bank.Securities/*': ['n2'] };

/** Runs `peerbroker config <args>` from dist/ and resolves with its exit code and output. */
function cli(nats: NatsServerHandle, ...args: string[]): Promise<{ code: number | null; output: string }> {
  return runCli(['config', ...args, '--nats', nats.url, '--cluster', CLUSTER]);
}

describe('changing settings at run time (peerbroker config, JetStream on)', () => {
  const nats = natsForSuite({ jetstream: true });
  let n1: Broker;
  let n2: Broker;

  const live = () => [n1, n2];

  beforeAll(async () => {
    [n1, n2] = await startBrokerGroup(['n1', 'n2'], {
      nats: [nats().url],
      cluster: CLUSTER,
      capacity: 4,
      threshold: 0.5,
      margin: 0.2,
      periodMs: PERIOD_MS,
      workMs: 1,
    });
  });

  it('starts with the values given at start', () => {
    for (const b of live()) {
      expect(b.currentConfig()).toEqual({
        threshold: 0.5,
        margin: 0.2,
        periodMs: PERIOD_MS,
        maxHops: 2,
        peerChoice: 'least-loaded-accounted',
        forwardLegacy: false,
        sessions: [],
        dedicated: {},
      });
    }
  });

  it('applies config set on every live node within one period, and the reports follow the new period', async () => {
    const r = await cli(nats(), 'set', 'threshold=0.6', 'margin=0.15', 'period-ms=250');
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain(`published to cluster '${CLUSTER}' and kept in JetStream`);
    expect(r.output).not.toContain('is listening');
    await waitFor(
      () => live().every((b) => b.currentConfig().threshold === 0.6 && b.currentConfig().margin === 0.15 && b.currentConfig().periodMs === 250),
      PERIOD_MS,
      10,
      'every node to apply threshold=0.6 margin=0.15 period-ms=250',
    );
    // Each node now reports every 250 ms, as its peer sees.
    await waitFor(
      () => n2.peers.peers.find((p) => p.nodeId === 'n1')?.periodMs === 250 && n1.peers.peers.find((p) => p.nodeId === 'n2')?.periodMs === 250,
      5_000,
      20,
      'the peers to report the new period',
    );
  });

  it('gives a node started after the change the current values from JetStream', async () => {
    const n3 = await startBroker({ nodeId: 'n3', nats: [nats().url], cluster: CLUSTER, capacity: 4, periodMs: PERIOD_MS, workMs: 1 });
    await waitFor(
      () => n3.currentConfig().threshold === 0.6 && n3.currentConfig().margin === 0.15 && n3.currentConfig().periodMs === 250,
      5_000,
      10,
      'n3 to take the kept config',
    );
    await n3.stop();
  });

  it('changes the rules at run time, merged with the values set before', async () => {
    const r = await cli(
      nats(),
      'set',
      `sessions=${JSON.stringify(SESSIONS)}`,
      `dedicated=${JSON.stringify(DEDICATED)}`,
      'peer-choice=two-choices',
      'max-hops=3',
      'forward-legacy=true',
    );
    expect(r.code, r.output).toBe(0);
    const want = {
      threshold: 0.6,
      margin: 0.15,
      periodMs: 250,
      maxHops: 3,
      peerChoice: 'two-choices',
      forwardLegacy: true,
      sessions: SESSIONS,
      dedicated: DEDICATED,
    };
    await waitFor(() => live().every((b) => JSON.stringify(b.currentConfig()) === JSON.stringify(want)), 250, 10, 'every node to apply the rules');
    for (const b of live()) expect(b.currentConfig()).toEqual(want);

    // The rules are in force. A home is sent calls only while its last report is fresh (under
    // two periods old, 500 ms now), which a busy machine may briefly miss: hence waitFor.
    const err = await waitFor(
      () => callError(unary(plainSecuritiesClient(n1.endpoint), 'GetQuote', { symbol: 'X' }, { metadata: followMetadata() })),
      5_000,
      20,
      'n1 to redirect GetQuote',
    );
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.metadata.get('peerbroker-location-node')).toEqual(['n2']);
    expect(err.metadata.get('peerbroker-reason')).toEqual(['service']);
    // forward-legacy=true: a plain client's call is forwarded to the home.
    await waitFor(async () => (await unary(plainSecuritiesClient(n1.endpoint), 'GetQuote', { symbol: 'X' })).servedBy === 'n2', 5_000, 20, 'a forwarded GetQuote');
    // OpenAccount now starts a session.
    const client = bankClient([n2.endpoint]);
    await unary(client, 'OpenAccount', { owner: 'o', initialCents: 0 });
    expect(client.peerbroker.session.token).toMatch(/^n2\./);
  });

  it('prints the kept config with config get, keys spelled as config set takes them', async () => {
    const r = await cli(nats(), 'get');
    expect(r.code, r.output).toBe(0);
    const kept = JSON.parse(r.output.slice(r.output.indexOf('{')));
    expect(kept.values).toMatchObject({ threshold: 0.6, margin: 0.15, 'period-ms': 250, 'max-hops': 3, 'forward-legacy': true });
  });

  it('refuses invalid values in the CLI with exit code 2 naming the key, and every node keeps its values', async () => {
    const before = live().map((b) => b.currentConfig());
    const cases: Array<[string, string]> = [
      ['threshold=1.5', "'threshold': Too big"],
      ['period-ms=fast', "'period-ms'"],
      ['peer-choice=random', "'peer-choice': must be one of least-loaded, least-loaded-accounted, two-choices"],
      ['bogus=1', "'bogus': is not a runtime setting"],
      ['sessions=[{"enter":"not a method"}]', "'sessions[0]"],
      ['dedicated={"bank.Securities/*":[]}', "'dedicated."],
      ['sessions=[not json', "'sessions': is not valid JSON"],
    ];
    for (const [pair, key] of cases) {
      const r = await cli(nats(), 'set', pair);
      expect(r.code, `${pair}: ${r.output}`).toBe(2);
      expect(r.output, pair).toContain(`peerbroker: invalid config: ${key}`);
    }
    await sleep(PERIOD_MS);
    expect(live().map((b) => b.currentConfig())).toEqual(before);
    const kept = JSON.parse((await cli(nats(), 'get')).output.replace(/^[^{]*/, ''));
    expect(kept.values.threshold).toBe(0.6);
  });

  it('keeps the last good config on every node when an invalid change arrives on the subject', async () => {
    const before = live().map((b) => b.currentConfig());
    const nc = await connect({ servers: nats().url });
    try {
      const send = (values: object) =>
        nc.publish(configSubject(CLUSTER), Buffer.from(JSON.stringify({ version: `t-${Math.random()}`, setAt: Date.now(), values })));
      send({ threshold: 7 });
      send({ margin: 0.1, peerChoice: 'nope' }); // one bad value refuses the whole change
      nc.publish(configSubject(CLUSTER), Buffer.from('not json'));
      await nc.flush();
      await sleep(PERIOD_MS);
      expect(live().map((b) => b.currentConfig())).toEqual(before);
      // A good change after them still applies.
      send({ ...before[0], threshold: 0.7 });
      await nc.flush();
      await waitFor(() => live().every((b) => b.currentConfig().threshold === 0.7), PERIOD_MS, 10, 'every node to apply threshold=0.7');
    } finally {
      await nc.close();
    }
  });

  it('configure() applies on this node only and refuses a bad value naming it', () => {
    expect(() => n1.configure({ threshold: 2 })).toThrow(ConfigError);
    expect(() => n1.configure({ threshold: 2 })).toThrow("invalid config: 'threshold'");
    expect(() => n1.configure({ bogus: 1 } as never)).toThrow("'bogus'");
    n1.configure({ margin: 0.3 });
    expect(n1.currentConfig().margin).toBe(0.3);
    expect(n2.currentConfig().margin).toBe(0.15);
  });

  it('keeps a rule set by configure() in force when a later configure() changes another rule', async () => {
    const sessions = [{ enter: 'bank.Banking/Deposit', within: 'bank.Banking/*', exit: 'bank.Banking/Withdraw' }];
    n1.configure({ sessions });
    n1.configure({ dedicated: { 'bank.Securities/*': ['n1'] } });
    expect(n1.currentConfig().sessions).toEqual(sessions);
    const raw = plainSecuritiesClient(n1.endpoint);
    expect((await unary(raw, 'GetQuote', { symbol: 'D' }, { metadata: followMetadata() })).servedBy).toBe('n1');
    const client = bankClient([n1.endpoint]);
    const r = await unary(client, 'Deposit', { accountId: 'k', amountCents: 1 });
    expect(r.metadata.get('peerbroker-session')[0]).toMatch(/^n1\./);
    expect(client.peerbroker.session.token).toMatch(/^n1\./);
  });

  it('never makes a node look off-line to its peers when the period gets longer', async () => {
    // From 250 ms to 1 s: judged by the old period, a peer is off-line after 3 × 250 ms of silence.
    const seen: string[] = [];
    for (const b of live()) b.peers.on('offline', (p: { nodeId: string }) => seen.push(`${b.nodeId} saw ${p.nodeId} off-line`));
    const r = await cli(nats(), 'set', 'period-ms=1000');
    expect(r.code, r.output).toBe(0);
    await waitFor(() => live().every((b) => b.currentConfig().periodMs === 1000), 250, 10, 'every node to apply period-ms=1000');
    await sleep(1_500);
    expect(seen).toEqual([]);
    for (const b of live()) expect(b.members().map((m) => m.status)).toEqual(['ONLINE', 'ONLINE']);
  });
});
