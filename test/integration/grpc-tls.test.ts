import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src';
import { bankClient, callError, makeBusy, plainBankClient, startBroker, unary, waitFor } from '../helpers/brokers';
import { makeTestPki, type CertFiles, type TestPki } from '../helpers/certs';
import { natsForSuite } from '../helpers/suite';

const PERIOD_MS = 200;

/** Client credentials from the test CA, with a client certificate unless `cert` is null. */
function tlsCredentials(pki: TestPki, cert: CertFiles | null): grpc.ChannelCredentials {
  const ca = fs.readFileSync(pki.ca);
  return cert ? grpc.credentials.createSsl(ca, fs.readFileSync(cert.key), fs.readFileSync(cert.cert)) : grpc.credentials.createSsl(ca);
}

describe('gRPC over TLS (client certificates required)', () => {
  const nats = natsForSuite();
  let pki: TestPki;
  let clientCert: CertFiles;

  beforeAll(() => {
    pki = makeTestPki('grpc-tls');
    clientCert = pki.issue('client');
  });

  afterAll(() => {
    pki?.cleanup();
  });

  /** Two TLS brokers: `a` on 127.0.0.1 (loaded to 0.75), `b` on `bHost` with `bCert`. */
  async function loadedPair(cluster: string, bHost: string, bCert: CertFiles) {
    const aCert = pki.issue(`${cluster}-a`, { ips: ['127.0.0.1'] });
    const common = { nats: [nats().url], cluster, capacity: 4, threshold: 0.5, margin: 0.2, periodMs: PERIOD_MS, workMs: 5 };
    const a = await startBroker({ nodeId: 'a', listen: '127.0.0.1:0', tls: { certFile: aCert.cert, keyFile: aCert.key, caFile: pki.ca }, ...common });
    const b = await startBroker({ nodeId: 'b', listen: `${bHost}:0`, tls: { certFile: bCert.cert, keyFile: bCert.key, caFile: pki.ca }, ...common });
    for (const x of [a, b]) await waitFor(() => x.members().filter((m) => m.status === 'ONLINE').length === 2, 15_000, 20, `${x.nodeId} to see its peer`);
    // Three long plain streams over TLS keep a at 0.75.
    const hold = await makeBusy(a, b, 3, { count: 100_000, credentials: tlsCredentials(pki, clientCert) });
    return { a, b, release: () => hold.release() };
  }

  describe('a redirect to a peer whose certificate names its address', () => {
    let a: Broker;
    let b: Broker;
    let release: () => void;

    beforeAll(async () => {
      ({ a, b, release } = await loadedPair('tls-good', '127.0.0.2', pki.issue('tls-good-b', { ips: ['127.0.0.2'] })));
    });

    afterAll(async () => {
      release?.();
      await Promise.all([a?.stop(), b?.stop()]);
    });

    it('is followed over TLS: the stub checks the peer\'s certificate for the peer\'s address and the call runs there', async () => {
      const client = bankClient([a.endpoint], { credentials: tlsCredentials(pki, clientCert) });
      const r = await unary(client, 'GetBalance', { accountId: 't1' });
      expect(r.servedBy).toBe('b');
      expect(b.endpoint.startsWith('127.0.0.2:')).toBe(true);
      expect(client.peerbroker.stats.redirectsFollowed).toBe(1);
      expect(client.peerbroker.pool.endpoints()).toContain(b.endpoint);
    });

    it('forwards the call of a plain client to the peer over TLS, with the node\'s own certificate (forwardLegacy)', async () => {
      a.configure({ forwardLegacy: true });
      try {
        const r = await unary(plainBankClient(a.endpoint, tlsCredentials(pki, clientCert)), 'GetBalance', { accountId: 't2' });
        expect(r.servedBy).toBe('b');
        expect(a.stats.forwarded).toBeGreaterThan(0);
      } finally {
        a.configure({ forwardLegacy: false });
      }
    });

    it('refuses a client without a certificate and a plaintext client; nothing runs', async () => {
      const before = a.stats.run;
      const noCert = await callError(unary(plainBankClient(a.endpoint, tlsCredentials(pki, null)), 'GetBalance', { accountId: 't3' }, { timeoutMs: 3_000 }));
      expect(noCert.code).toBe(status.UNAVAILABLE);
      const plaintext = await callError(
        unary(plainBankClient(a.endpoint, grpc.credentials.createInsecure()), 'GetBalance', { accountId: 't4' }, { timeoutMs: 3_000 }),
      );
      expect(plaintext.code).toBe(status.UNAVAILABLE);
      expect(a.stats.run).toBe(before);
    });

    it('refuses a client whose certificate another CA signed', async () => {
      const other = makeTestPki('other-ca');
      try {
        const stranger = other.issue('stranger-client');
        const creds = grpc.credentials.createSsl(fs.readFileSync(pki.ca), fs.readFileSync(stranger.key), fs.readFileSync(stranger.cert));
        const err = await callError(unary(plainBankClient(a.endpoint, creds), 'GetBalance', { accountId: 't5' }, { timeoutMs: 3_000 }));
        expect(err.code).toBe(status.UNAVAILABLE);
      } finally {
        other.cleanup();
      }
    });
  });

  describe('a redirect to a peer whose certificate names another address', () => {
    let a: Broker;
    let b: Broker;
    let release: () => void;

    beforeAll(async () => {
      // b listens on 127.0.0.3 but its certificate (same CA) is for 127.0.0.9 only.
      ({ a, b, release } = await loadedPair('tls-wrong-name', '127.0.0.3', pki.issue('tls-wrong-name-b', { ips: ['127.0.0.9'], dns: ['b.example'] })));
    });

    afterAll(async () => {
      release?.();
      await Promise.all([a?.stop(), b?.stop()]);
    });

    it('fails the call instead of having it served there', async () => {
      const client = bankClient([a.endpoint], { credentials: tlsCredentials(pki, clientCert), maxFailovers: 0 });
      const before = b.stats.run;
      const err = await callError(unary(client, 'GetBalance', { accountId: 'w1' }, { timeoutMs: 5_000 }));
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.details).toMatch(/altnames|certificate|Hostname\/IP/i);
      expect(client.peerbroker.stats.redirectsFollowed).toBe(1);
      expect(b.stats.run).toBe(before);
    });

    it('never has it served there even when failing over to another member', async () => {
      const client = bankClient([a.endpoint], { credentials: tlsCredentials(pki, clientCert) });
      const before = b.stats.run;
      const r = await unary(client, 'GetBalance', { accountId: 'w2' }, { timeoutMs: 5_000 }).then(
        (x) => x.servedBy,
        (e: ServiceError) => `failed: ${status[e.code]}`,
      );
      expect(r).not.toBe('b');
      expect(b.stats.run).toBe(before);
    });
  });
});
