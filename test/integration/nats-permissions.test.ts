import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSubject } from '../../src';
import {
  members,
  runCli,
  startBrokerProcess,
  waitFor,
  type BrokerProcess,
} from '../helpers/brokers';
import { secretFile } from '../helpers/certs';
import { startNatsServer, type NatsServerHandle } from '../helpers/nats';
import { killAllTracked, waitForLine } from '../helpers/processes';

const CLUSTER = 'perm';
const PERIOD_MS = 200;
const USERS = ['n1', 'n2', 'n3', 'admin', 'monitor'] as const;
type User = (typeof USERS)[number];

/**
 * The nats-server config shipped in deploy/nats/auth.conf, for this test's cluster name,
 * with each `$PEERBROKER_<USER>_PASS` replaced by a fresh random password.
 */
function shippedAuthConfig(passwords: Record<User, string>): string {
  let text = fs.readFileSync(path.resolve(__dirname, '..', '..', 'deploy', 'nats', 'auth.conf'), 'utf8');
  text = text.replace(/peerbroker\.demo\./g, `peerbroker.${CLUSTER}.`).replace(/peerbroker-config-demo/g, `peerbroker-config-${CLUSTER}`);
  for (const u of USERS) text = text.replaceAll(`$PEERBROKER_${u.toUpperCase()}_PASS`, `"${passwords[u]}"`);
  const settings = text.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');
  expect(settings).not.toMatch(/\bdemo\b|\$PEERBROKER_/);
  return secretFile('auth.conf', text);
}

/** Connects as `user` and records every permissions violation the server reports. */
async function connectAs(nats: NatsServerHandle, user: User, pass: string) {
  const nc = await connect({ servers: nats.url, user, pass, name: `perm-test-${user}` });
  const violations: string[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      const ctx = (s as { permissionContext?: { operation: string; subject: string } }).permissionContext;
      if (s.type === 'error' && ctx) violations.push(`${ctx.operation} ${ctx.subject}`);
    }
  })();
  return { nc, violations };
}

describe('per-node NATS permissions (deploy/nats/auth.conf)', () => {
  let nats: NatsServerHandle;
  const passwords = Object.fromEntries(USERS.map((u) => [u, randomBytes(12).toString('hex')])) as Record<User, string>;
  const passFile = (u: User) => secretFile(`${u}.pass`, `${passwords[u]}\n`);
  const conns: NatsConnection[] = [];

  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true, extraArgs: ['-c', shippedAuthConfig(passwords)] });
  });

  afterAll(async () => {
    await Promise.all(conns.map((c) => c.close()));
    await nats?.stop();
    await killAllTracked();
  });

  it("refuses n1 publishing on n2's subject (a permissions violation): n2's subscribers never see it", async () => {
    const monitor = await connectAs(nats, 'monitor', passwords.monitor);
    const n1 = await connectAs(nats, 'n1', passwords.n1);
    conns.push(monitor.nc, n1.nc);
    const seen: string[] = [];
    monitor.nc.subscribe(loadSubject(CLUSTER, '*'), { callback: (err, m) => !err && seen.push(m.subject) });
    await monitor.nc.flush();

    for (let i = 0; i < 5; i++) n1.nc.publish(loadSubject(CLUSTER, 'n2'), new TextEncoder().encode(`as n2 #${i}`));
    n1.nc.publish(`peerbroker.${CLUSTER}.config`, new TextEncoder().encode('{"values":{"threshold":0}}'));
    n1.nc.publish(loadSubject(CLUSTER, 'n1'), new TextEncoder().encode('as itself'));
    monitor.nc.publish(loadSubject(CLUSTER, 'n3'), new TextEncoder().encode('the monitor says nothing'));
    await Promise.all([n1.nc.flush(), monitor.nc.flush()]);
    await waitFor(() => seen.length >= 1 && n1.violations.length >= 6, 5_000, 20, 'the violations and the one allowed message');
    await new Promise((r) => setTimeout(r, 200));

    expect(seen).toEqual([loadSubject(CLUSTER, 'n1')]);
    expect(n1.violations).toContain(`publish ${loadSubject(CLUSTER, 'n2')}`);
    expect(n1.violations).toContain(`publish peerbroker.${CLUSTER}.config`);
    expect(monitor.violations).toContain(`publish ${loadSubject(CLUSTER, 'n3')}`);
    expect(nats.output()).toContain(`Publish Violation - User "n1", Subject "${loadSubject(CLUSTER, 'n2')}"`);
  });

  describe('broker processes, each with its own credentials', () => {
    let nodes: BrokerProcess[] = [];

    beforeAll(async () => {
      const common = { nats: [nats.url], cluster: CLUSTER, capacity: 4, periodMs: PERIOD_MS };
      nodes = await Promise.all([
        startBrokerProcess({ nodeId: 'n1', ...common, extraArgs: ['--nats-user', 'n1', '--nats-pass-file', passFile('n1')] }),
        startBrokerProcess({ nodeId: 'n2', ...common, extraArgs: ['--nats-user', 'n2'], env: { PEERBROKER_NATS_PASS: passwords.n2 } }),
      ]);
      await waitFor(async () => (await members(nodes[0].endpoint)).length === 2, 15_000, 50, 'n1 to see n2');
    });

    afterAll(async () => {
      await Promise.all(nodes.map((b) => b.kill9()));
    });

    it("a node started with n1's credentials that claims to be n2 is heard by no one", async () => {
      const impostor = await startBrokerProcess({
        nodeId: 'n2',
        nats: [nats.url],
        cluster: CLUSTER,
        capacity: 4,
        periodMs: PERIOD_MS,
        extraArgs: ['--nats-user', 'n1', '--nats-pass-file', passFile('n1'), '--log-level', 'warn'],
      });
      try {
        await waitForLine(impostor.child, /permissions violation: publish on 'peerbroker\.perm\.load\.n2'.*NATS server refused an operation/, 5_000);
        // Several of the impostor's periods later, n1 still knows n2 only at n2's real address.
        await new Promise((r) => setTimeout(r, 5 * PERIOD_MS));
        const view = await members(nodes[0].endpoint);
        const n2 = view.find((m) => m.nodeId === 'n2');
        expect(n2?.endpoint).toBe(nodes[1].endpoint);
        expect(view.some((m) => m.endpoint === impostor.endpoint)).toBe(false);
      } finally {
        await impostor.kill9();
      }
    });

    it('only admin may change the config: every node applies it; n1 is refused and nothing changes', async () => {
      const set = (user: User, value: string) =>
        runCli(['config', 'set', `threshold=${value}`, '--nats', nats.url, '--cluster', CLUSTER, '--nats-user', user, '--nats-pass-file', passFile(user)]);
      const byAdmin = await set('admin', '0.7');
      expect(byAdmin.code, byAdmin.output).toBe(0);
      for (const b of nodes) await waitForLine(b.child, /"threshold":0\.7.*"msg":"config applied"/, 5_000);

      const byNode = await set('n1', '0.1');
      expect(byNode.code).not.toBe(0);
      expect(byNode.output).toMatch(/refused the change \(permissions violation/);
      await new Promise((r) => setTimeout(r, 300));
      for (const b of nodes) expect(b.output()).not.toMatch(/"threshold":0\.1/);
    });
  });
});
