import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { isLoopbackHost, loadTls, plaintextWarning } from '../../../src/broker/tls';
import { ConfigError } from '../../../src/errors';
import { makeTestPki } from '../../helpers/certs';

describe('plaintext gRPC', () => {
  it.each(['127.0.0.1', '127.0.0.3', '127.255.0.9', '::1', '[::1]', 'localhost'])('counts %s as loopback: no warning', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
    expect(plaintextWarning(host, false)).toBeUndefined();
  });

  it.each(['0.0.0.0', '::', '[::]', '10.0.0.5', 'broker1', '128.0.0.1'])('warns when %s is served without TLS', (host) => {
    expect(isLoopbackHost(host)).toBe(false);
    expect(plaintextWarning(host, false)).toMatch(/without TLS.*--tls-cert/);
    expect(plaintextWarning(host, true)).toBeUndefined();
  });
});

describe('loadTls', () => {
  const pki = makeTestPki('unit-tls');
  const a = pki.issue('a', { ips: ['127.0.0.1'] });
  const b = pki.issue('b', { ips: ['127.0.0.2'] });

  it('keeps the key out of JSON and console output (resolved options hold it)', () => {
    const t = loadTls({ certFile: a.cert, keyFile: a.key });
    expect(t.key.toString()).toContain('PRIVATE KEY');
    expect(JSON.stringify({ tls: t })).toBe('{"tls":"[TLS files: certificate and key]"}');
    expect(inspect({ tls: t })).toBe('{ tls: [TLS files: certificate and key] }');
  });

  it('reads a certificate, its key and a CA', () => {
    const t = loadTls({ certFile: a.cert, keyFile: a.key, caFile: pki.ca });
    expect(t.cert.toString()).toContain('BEGIN CERTIFICATE');
    expect(t.ca?.toString()).toContain('BEGIN CERTIFICATE');
  });

  it('refuses a key that is not the certificate\'s, naming tls.keyFile and never printing the key', () => {
    let err: unknown;
    try {
      loadTls({ certFile: a.cert, keyFile: b.key });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('tls.keyFile');
    expect((err as Error).message).not.toMatch(/PRIVATE KEY/);
  });

  it('refuses a missing file and a file that is not PEM, naming the field', () => {
    expect(() => loadTls({ certFile: '/nonexistent.crt', keyFile: a.key })).toThrow(/'tls.certFile': cannot read/);
    expect(() => loadTls({ certFile: a.key, keyFile: a.key })).toThrow(/'tls.certFile'/);
    expect(() => loadTls({ certFile: a.cert, keyFile: a.key, caFile: a.key })).toThrow(/'tls.caFile'/);
  });
});
