import { randomBytes } from 'node:crypto';
import { nkeys } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsAuthOptions } from '../../src/cluster/nats-auth';
import { cleanupBrokers, runCli, startBroker, waitFor } from '../helpers/brokers';
import { makeTestPki, secretFile, type CertFiles, type TestPki } from '../helpers/certs';
import { startNatsServer, type NatsServerHandle } from '../helpers/nats';
import { killAllTracked } from '../helpers/processes';

const CLUSTER = 'natstls';

describe('NATS over TLS (client certificates verified) with an NKey user', () => {
  let nats: NatsServerHandle;
  let pki: TestPki;
  let client: CertFiles;
  let seedFile: string;
  let keyFile: string;

  beforeAll(async () => {
    pki = makeTestPki('nats-tls');
    // nats.js checks a server reached by IP address against the name 'localhost'.
    const server = pki.issue('nats-server', { ips: ['127.0.0.1'], dns: ['localhost'] });
    client = pki.issue('nats-client');
    const user = nkeys.createUser();
    seedFile = secretFile('user.nk', `${new TextDecoder().decode(user.getSeed())}\n`);
    keyFile = secretFile('cluster.key', `${randomBytes(32).toString('hex')}\n`);
    const conf = secretFile(
      'nats.conf',
      [
        `authorization { users = [ { nkey: "${user.getPublicKey()}" } ] }`,
        `tls { cert_file: "${server.cert}", key_file: "${server.key}", ca_file: "${pki.ca}", verify: true, timeout: 2 }`,
      ].join('\n'),
    );
    nats = await startNatsServer({ extraArgs: ['-c', conf] });
  });

  afterAll(async () => {
    await cleanupBrokers();
    await nats?.stop();
    await killAllTracked();
    pki?.cleanup();
  });

  const auth = (over: Partial<NatsAuthOptions> = {}): NatsAuthOptions => ({
    nkeySeedFile: seedFile,
    tlsCaFile: pki.ca,
    tlsCertFile: client.cert,
    tlsKeyFile: client.key,
    ...over,
  });
  const common = () => ({ nats: [nats.url], cluster: CLUSTER, capacity: 4, periodMs: 200, clusterKeyFile: keyFile });

  it('brokers reporting from their reporter thread over TLS, authenticated by NKey, see each other', async () => {
    const n1 = await startBroker({ nodeId: 'n1', ...common(), natsAuth: auth() });
    const n2 = await startBroker({ nodeId: 'n2', ...common(), natsAuth: auth() });
    for (const b of [n1, n2]) await waitFor(() => b.members().filter((m) => m.status === 'ONLINE').length === 2, 10_000, 20, `${b.nodeId} to see its peer`);
  });

  it('peerbroker status reads them with the same flags', async () => {
    const { code, output } = await runCli([
      'status', '--nats', nats.url, '--cluster', CLUSTER, '--wait-ms', '700',
      '--nats-nkey-seed-file', seedFile, '--nats-tls-ca', pki.ca, '--nats-tls-cert', client.cert, '--nats-tls-key', client.key,
      '--cluster-key-file', keyFile,
    ]);
    expect(code, output).toBe(0);
    expect(output).toMatch(/^n1\s+ONLINE/m);
    expect(output).toMatch(/^n2\s+ONLINE/m);
  });

  it.each<[string, Partial<NatsAuthOptions>]>([
    ['without a client certificate', { tlsCertFile: undefined, tlsKeyFile: undefined }],
    ['without the NKey', { nkeySeedFile: undefined }],
    ['with a CA that did not sign the server', { tlsCaFile: undefined }],
  ])('a broker %s cannot join', async (_what, over) => {
    const other = makeTestPki('nats-tls-other');
    try {
      const a = auth(over);
      if (over.tlsCaFile === undefined && 'tlsCaFile' in over) a.tlsCaFile = other.ca;
      // (A server that refuses the client's certificate does so after the handshake: fail fast.)
      const failed = await startBroker({ nodeId: 'x', ...common(), natsAuth: a, natsOptions: { timeout: 2_000 } }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(failed?.message).toMatch(/control plane/);
    } finally {
      other.cleanup();
    }
  });
});
