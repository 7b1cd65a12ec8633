import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { natsAuthFrom, nested, warnOfSecrets } from '../../../src/cli/security-flags';
import { toBrokerOptions } from '../../../src/cli/start-config';
import { configErrorOf } from '../../helpers/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerbroker-flags-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const keyFile = path.join(dir, 'cluster.key');
fs.writeFileSync(keyFile, 'a7f3c0e1b2d4968574c3b2a1f0e9d8c7\n', { mode: 0o600 });
const passFile = path.join(dir, 'pass');
fs.writeFileSync(passFile, 'pw\n', { mode: 0o600 });

const fieldOf = (fn: () => unknown) => configErrorOf(fn).field;

describe('security flags of the CLI', () => {
  it('take the NATS password from $PEERBROKER_NATS_PASS when a user is given without one', () => {
    expect(natsAuthFrom({ 'nats-user': 'n1' }, { PEERBROKER_NATS_PASS: 'from-env' })).toEqual({ user: 'n1', pass: 'from-env' });
    expect(natsAuthFrom({ 'nats-user': 'n1', 'nats-pass-file': passFile }, { PEERBROKER_NATS_PASS: 'ignored' })).toEqual({ user: 'n1', passFile });
  });

  it('take the token from $PEERBROKER_NATS_TOKEN only when no other way is given', () => {
    expect(natsAuthFrom({}, { PEERBROKER_NATS_TOKEN: 't' })).toEqual({ token: 't' });
    expect(natsAuthFrom({ 'nats-creds': '/x.creds' }, { PEERBROKER_NATS_TOKEN: 't' })).toEqual({ credsFile: '/x.creds' });
    expect(natsAuthFrom({}, {})).toBeUndefined();
  });

  it('warn about a password or token on the command line, without repeating it', () => {
    const lines: string[] = [];
    warnOfSecrets({ 'nats-user': 'n1', 'nats-pass': 'hunter2', 'nats-token': 'tok' }, (l) => lines.push(l));
    expect(lines).toHaveLength(2);
    expect(lines.join('\n')).toMatch(/--nats-pass on the command line is visible/);
    expect(lines.join('\n')).not.toMatch(/hunter2|tok\b/);
  });

  it('map --tls-* to the tls option only when one is given', () => {
    expect(nested('tls', {})).toBeUndefined();
    expect(nested('tls', { 'tls-cert': 'c', 'tls-key': 'k', 'tls-ca': 'a' })).toEqual({ certFile: 'c', keyFile: 'k', caFile: 'a' });
  });

  it('reach the broker options, with errors naming the flag', () => {
    const o = toBrokerOptions({ 'node-id': 'n1', 'cluster-key-file': keyFile, 'nats-user': 'n1', 'nats-pass-file': passFile });
    expect(o.clusterKeyFile).toBe(keyFile);
    expect(o.natsAuth).toEqual({ user: 'n1', passFile });
    expect(fieldOf(() => toBrokerOptions({ 'node-id': 'n1', 'cluster-key-file': path.join(dir, 'missing.key') }))).toBe('cluster-key-file');
    expect(fieldOf(() => toBrokerOptions({ 'node-id': 'n1', 'tls-cert': keyFile }))).toBe('tls-key');
    expect(fieldOf(() => toBrokerOptions({ 'node-id': 'n1', 'tls-cert': keyFile, 'tls-key': keyFile }))).toBe('tls-cert');
    expect(fieldOf(() => toBrokerOptions({ 'node-id': 'n1', 'nats-user': 'n1', 'nats-pass-file': path.join(dir, 'nope') }))).toBe('nats-pass-file');
    expect(fieldOf(() => toBrokerOptions({ 'node-id': 'n1', 'nats-token': 't', 'nats-creds': '/x' }))).toBe('nats-creds');
  });
});
