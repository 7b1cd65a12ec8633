import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nkeys, type Authenticator } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import { describeNatsAuth, natsConnectionOptions, redactUrl, type NatsAuthOptions } from '../../../src/cluster/nats-auth';
import { configErrorOf } from '../../helpers/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerbroker-nats-auth-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content, { mode: 0o600 });
  return p;
}

function authOf(auth: NatsAuthOptions): ReturnType<Authenticator> {
  const o = natsConnectionOptions(auth);
  const a = o.authenticator as Authenticator;
  return a(new TextEncoder().encode('nonce-123') as unknown as string);
}

describe('natsConnectionOptions', () => {
  it('gives no options when no auth is set', () => {
    expect(natsConnectionOptions(undefined)).toEqual({});
  });

  it('authenticates with a user and a password read from a file, again at every connect', () => {
    const passFile = file('pass', 'first-secret\n');
    const a = natsConnectionOptions({ user: 'n1', passFile }).authenticator as Authenticator;
    expect(a('x')).toEqual({ user: 'n1', pass: 'first-secret' });
    fs.writeFileSync(passFile, 'rotated-secret\n');
    expect(a('x')).toEqual({ user: 'n1', pass: 'rotated-secret' });
    // A file that went away keeps the last good value instead of failing the reconnect.
    fs.rmSync(passFile);
    expect(a('x')).toEqual({ user: 'n1', pass: 'rotated-secret' });
  });

  it('authenticates with a token given directly or from a file', () => {
    expect(authOf({ token: 't0k3n' })).toEqual({ auth_token: 't0k3n' });
    expect(authOf({ tokenFile: file('token', '  from-file \n') })).toEqual({ auth_token: 'from-file' });
  });

  it('signs the nonce with an NKey seed read from a file', () => {
    const user = nkeys.createUser();
    const seedFile = file('user.nk', new TextDecoder().decode(user.getSeed()));
    const r = authOf({ nkeySeedFile: seedFile }) as { nkey: string; sig: string };
    expect(r.nkey).toBe(user.getPublicKey());
    expect(typeof r.sig).toBe('string');
  });

  it('reads a creds file (user JWT and seed)', () => {
    const user = nkeys.createUser();
    const jwt = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJVQSJ9.c2ln';
    const creds = [
      '-----BEGIN NATS USER JWT-----', jwt, '------END NATS USER JWT------', '',
      '-----BEGIN USER NKEY SEED-----', new TextDecoder().decode(user.getSeed()), '------END USER NKEY SEED------', '',
    ].join('\n');
    const r = authOf({ credsFile: file('user.creds', creds) }) as { jwt: string; nkey: string };
    expect(r.jwt).toBe(jwt);
    expect(r.nkey).toBe(user.getPublicKey());
  });

  it('turns TLS on with a CA, and a client certificate when given both parts', () => {
    const ca = file('ca.pem', 'x');
    const cert = file('c.pem', 'x');
    const key = file('k.pem', 'x');
    expect(natsConnectionOptions({ tlsCaFile: ca }).tls).toEqual({ caFile: ca, certFile: undefined, keyFile: undefined });
    expect(natsConnectionOptions({ tlsCaFile: ca, tlsCertFile: cert, tlsKeyFile: key }).tls).toEqual({ caFile: ca, certFile: cert, keyFile: key });
  });

  it.each<[string, NatsAuthOptions, string]>([
    ['a user without a password', { user: 'n1' }, 'natsAuth.passFile'],
    ['a password without a user', { pass: 'x' }, 'natsAuth.user'],
    ['a password given twice', { user: 'n1', pass: 'x', passFile: '/nonexistent' }, 'natsAuth.passFile'],
    ['two ways to authenticate', { user: 'n1', pass: 'x', token: 'y' }, 'natsAuth.token'],
    ['a client certificate without its key', { tlsCertFile: '/etc/hostname' }, 'natsAuth.tlsKeyFile'],
    ['an unknown option', { password: 'x' } as unknown as NatsAuthOptions, 'natsAuth.'],
  ])('refuses %s, naming the field', (_what, auth, field) => {
    expect(configErrorOf(() => natsConnectionOptions(auth)).field).toBe(field);
  });

  it('refuses unreadable, empty or invalid secret files without quoting their content', () => {
    expect(configErrorOf(() => natsConnectionOptions({ user: 'n1', passFile: path.join(dir, 'missing') })).message).toMatch(/cannot read .*ENOENT/);
    expect(configErrorOf(() => natsConnectionOptions({ tokenFile: file('empty', '\n') })).message).toMatch(/is empty/);
    const bad = configErrorOf(() => natsConnectionOptions({ nkeySeedFile: file('bad.nk', 'SUsecret-but-not-a-seed') }));
    expect(bad.field).toBe('natsAuth.nkeySeedFile');
    expect(bad.message).not.toContain('secret-but-not-a-seed');
    const badCreds = configErrorOf(() => natsConnectionOptions({ credsFile: file('bad.creds', 'leaked-looking-content') }));
    expect(badCreds.field).toBe('natsAuth.credsFile');
    expect(badCreds.message).not.toContain('leaked-looking-content');
  });
});

describe('describeNatsAuth and redactUrl', () => {
  it('say how a connection authenticates without any secret', () => {
    expect(describeNatsAuth({ user: 'n1', pass: 'hunter2' })).toBe("user 'n1'");
    expect(describeNatsAuth({ user: 'n1', passFile: '/run/secrets/p' })).toBe("user 'n1' (password from file)");
    expect(describeNatsAuth({ token: 'hunter2', tlsCaFile: '/ca' })).toBe('token, tls');
    expect(describeNatsAuth(undefined)).toBe('none');
  });

  it('hide credentials written into a NATS URL', () => {
    expect(redactUrl('nats://n1:hunter2@127.0.0.1:4222')).toBe('nats://***@127.0.0.1:4222');
    expect(redactUrl('tls://token@nats.example:4222')).toBe('tls://***@nats.example:4222');
    expect(redactUrl('nats://127.0.0.1:4222')).toBe('nats://127.0.0.1:4222');
  });
});
