import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { members, runCli, startBrokerProcess, waitFor, type BrokerProcess } from '../helpers/brokers';
import { makeTestPki, secretFile } from '../helpers/certs';
import { startNatsServer, type NatsServerHandle } from '../helpers/nats';
import { killAllTracked } from '../helpers/processes';

const CLUSTER = 'secrets';
const PERIOD_MS = 200;

describe('secrets never reach logs or status output', () => {
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const wrongPassword = `wrong-${randomBytes(12).toString('hex')}`;
  const token = `tok-${randomBytes(12).toString('hex')}`;
  const clusterSecret = randomBytes(32).toString('hex');
  const passFile = secretFile('nats.pass', `${password}\n`);
  const keyFile = secretFile('cluster.key', `# test-only key\n${clusterSecret}\n`);
  let userServer: NatsServerHandle;
  let tokenServer: NatsServerHandle;
  let tlsKeyBody: string[] = [];
  const nodes: BrokerProcess[] = [];
  const outputs: Array<[what: string, text: string]> = [];

  beforeAll(async () => {
    [userServer, tokenServer] = await Promise.all([
      startNatsServer({ extraArgs: ['--user', 'n1', '--pass', password] }),
      startNatsServer({ extraArgs: ['--auth', token] }),
    ]);
    const pki = makeTestPki('secrets');
    const cert = pki.issue('node', { ips: ['127.0.0.1'] });
    tlsKeyBody = fs.readFileSync(cert.key, 'utf8').split('\n').filter((l) => l && !l.startsWith('-----'));
    const common = { cluster: CLUSTER, capacity: 4, periodMs: PERIOD_MS };
    const debug = ['--log-level', 'debug', '--cluster-key-file', keyFile];
    nodes.push(
      // Password from a file, TLS with client certificates, cluster key.
      await startBrokerProcess({
        nodeId: 'a',
        nats: [userServer.url],
        ...common,
        extraArgs: [...debug, '--nats-user', 'n1', '--nats-pass-file', passFile, '--tls-cert', cert.cert, '--tls-key', cert.key, '--tls-ca', pki.ca],
      }),
      // Password from the environment.
      await startBrokerProcess({ nodeId: 'b', nats: [userServer.url], ...common, extraArgs: [...debug, '--nats-user', 'n1'], env: { PEERBROKER_NATS_PASS: password } }),
      // Token from the environment, on another server.
      await startBrokerProcess({ nodeId: 'd', nats: [tokenServer.url], ...common, extraArgs: debug, env: { PEERBROKER_NATS_TOKEN: token } }),
    );
    await waitFor(async () => (await members(nodes[1].endpoint)).length === 2, 15_000, 50, 'b to see a');
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.kill9()));
    await Promise.all([userServer?.stop(), tokenServer?.stop()]);
    await killAllTracked();
  });

  it('peerbroker status (table and JSON) shows the nodes, and none of the secrets', async () => {
    const auth = ['--nats', userServer.url, '--cluster', CLUSTER, '--nats-user', 'n1', '--nats-pass-file', passFile, '--cluster-key-file', keyFile, '--wait-ms', '800'];
    const table = await runCli(['status', ...auth]);
    expect(table.code, table.output).toBe(0);
    expect(table.output).toMatch(/^a\s+ONLINE/m);
    const json = await runCli(['status', ...auth, '--json'], {});
    expect(json.code, json.output).toBe(0);
    expect(JSON.parse(json.output).nodes.map((n: { nodeId: string }) => n.nodeId)).toEqual(['a', 'b']);
    const viaEnv = await runCli(['status', '--nats', tokenServer.url, '--cluster', CLUSTER, '--wait-ms', '800'], { PEERBROKER_NATS_TOKEN: token });
    expect(viaEnv.output).toMatch(/^d\s+ONLINE/m);
    outputs.push(['status table', table.output], ['status --json', json.output], ['status (token)', viaEnv.output]);
  });

  it('config set and get, signed with the key, print no secret', async () => {
    const auth = ['--nats', userServer.url, '--cluster', CLUSTER, '--nats-user', 'n1', '--cluster-key-file', keyFile];
    const set = await runCli(['config', 'set', 'margin=0.25', ...auth], { PEERBROKER_NATS_PASS: password });
    expect(set.code, set.output).toBe(0);
    await waitFor(() => nodes.slice(0, 2).every((n) => /"margin":0\.25.*"msg":"config applied"/.test(n.output())), 5_000, 50, 'the change applied');
    const get = await runCli(['config', 'get', ...auth], { PEERBROKER_NATS_PASS: password });
    outputs.push(['config set', set.output], ['config get', get.output]);
  });

  it('a failed start (wrong password, or a password on the command line) names no secret', async () => {
    const wrong = await runCli(
      ['start', '--node-id', 'x', '--nats', userServer.url, '--cluster', CLUSTER, '--nats-user', 'n1', '--log-level', 'debug'],
      { PEERBROKER_NATS_PASS: wrongPassword },
    );
    expect(wrong.code).not.toBe(0);
    expect(wrong.output).toMatch(/Authorization Violation|AUTHORIZATION_VIOLATION/i);
    // nats.js does not take credentials from a URL: the start fails, and the URL is not echoed.
    const inUrl = await runCli(['start', '--node-id', 'y', '--nats', userServer.url.replace('nats://', `nats://n1:${password}@`), '--cluster', CLUSTER, '--log-level', 'debug']);
    expect(inUrl.code).not.toBe(0);
    const onArgv = await runCli(['status', '--nats', userServer.url, '--cluster', CLUSTER, '--nats-user', 'n1', '--nats-pass', password, '--wait-ms', '300']);
    expect(onArgv.output).toContain('--nats-pass on the command line is visible to other users');
    outputs.push(['failed start', wrong.output], ['start with a password in the URL', inUrl.output], ['status with --nats-pass', onArgv.output]);
    for (const s of [wrongPassword]) expect(wrong.output).not.toContain(s);
  });

  it('no log line of any node (debug level, through a clean stop) contains a secret', async () => {
    for (const n of nodes) await n.stop();
    for (const n of nodes) outputs.push([`node ${n.nodeId}`, n.output()]);
    const secrets: Array<[string, string]> = [
      ['the NATS password', password],
      ['the NATS token', token],
      ['the cluster key', clusterSecret],
      ...tlsKeyBody.map((l, i): [string, string] => [`line ${i + 1} of the TLS key`, l]),
    ];
    expect(outputs.length).toBeGreaterThanOrEqual(10);
    for (const [what, text] of outputs) {
      expect(text.length, `${what} printed something`).toBeGreaterThan(0);
      for (const [name, secret] of secrets) expect(text.includes(secret), `${what} contains ${name}:\n${text}`).toBe(false);
    }
    // The nodes did log at debug level, and said how they were protected.
    expect(outputs.find(([w]) => w === 'node a')![1]).toMatch(/"grpc":"tls, client certificates required","nats":"user 'n1' \(password from file\)","reports":"signed \(key [0-9a-f]{16}\)"/);
  });
});
