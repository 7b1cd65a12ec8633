import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, startBrokerProcess } from '../helpers/brokers';
import { startNatsServer } from '../helpers/nats';
import { freePort } from '../helpers/ports';
import { natsForSuite } from '../helpers/suite';

const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerbroker-cli-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the peerbroker command line', () => {
  it('prints its version with --version', async () => {
    const r = await runCli(['--version']);
    expect(r.code, r.output).toBe(0);
    expect(r.output.trim()).toBe(pkg.version);
  });

  it('refuses a bad --log-level naming the flag and the allowed levels, with exit code 2', async () => {
    const r = await runCli(['start', '--node-id', 'n1', '--log-level', 'loud']);
    expect(r.code, r.output).toBe(2);
    expect(r.output).toContain("peerbroker: invalid config: '--log-level': must be one of fatal, error, warn, info, debug, trace, silent");
  });

  it('names the key of a bad value from a --config file as the file spells it', async () => {
    const file = path.join(dir, 'node.yaml');
    fs.writeFileSync(file, 'node-id: n1\nmax-hops: -1\n');
    const r = await runCli(['start', '--config', file]);
    expect(r.code, r.output).toBe(2);
    expect(r.output).toContain("peerbroker: invalid config: 'max-hops':");
    const flag = await runCli(['start', '--node-id', 'n1', '--max-hops', '-1']);
    expect(flag.code, flag.output).toBe(2);
    expect(flag.output).toContain("peerbroker: invalid config: '--max-hops':");
  });

  it('exits with 2 for every kind of bad usage and 1 for a failure at run time', async () => {
    const unknownOption = await runCli(['start', '--bogus']);
    expect(unknownOption.code, unknownOption.output).toBe(2);
    const missing = await runCli(['status']);
    expect(missing.code, missing.output).toBe(2);
    expect(missing.output).toContain('--nats');
    const notANumber = await runCli(['start', '--node-id', 'n1', '--threshold', 'abc']);
    expect(notANumber.code, notANumber.output).toBe(2);
    expect(notANumber.output).toContain("'--threshold': must be a number, got 'abc'");
    const unknownService = await runCli(['start', '--node-id', 'n1', '--module', path.join(__dirname, '..', '..', 'dist', 'examples', 'bank', 'index.js'), '--services', 'x.Nope']);
    expect(unknownService.code, unknownService.output).toBe(2);
    expect(unknownService.output).toContain("'--services'");
    const noCommand = await runCli([]);
    expect(noCommand.code, noCommand.output).toBe(2);
    const port = await freePort();
    const unreachable = await runCli(['status', '--nats', `nats://127.0.0.1:${port}`, '--wait-ms', '100']);
    expect(unreachable.code, unreachable.output).toBe(1);
  });

  it('names the NATS URL it could not reach, without its credentials', async () => {
    const port = await freePort();
    const r = await runCli(['status', '--nats', `nats://admin:s3cret-pw@127.0.0.1:${port}`, '--wait-ms', '100']);
    expect(r.code, r.output).toBe(1);
    expect(r.output).toContain(`nats://***@127.0.0.1:${port}`);
    expect(r.output).toContain('CONNECTION_REFUSED');
    expect(r.output).not.toContain('s3cret-pw');
  });

  it('writes human log lines with --log-format pretty and JSON lines with --log-format json', async () => {
    const nats = await startNatsServer();
    try {
      const pretty = await startBrokerProcess({ nodeId: 'p1', nats: [nats.url], cluster: 'cli-log', extraArgs: ['--log-format', 'pretty'] });
      await pretty.stop();
      expect(pretty.output()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {1,2}\[p1\] broker started .*endpoint=127\.0\.0\.1:\d+/m);
      expect(pretty.output()).not.toMatch(/^\{"level"/m);
      const json = await startBrokerProcess({ nodeId: 'j1', nats: [nats.url], cluster: 'cli-log', extraArgs: ['--log-format', 'json'] });
      await json.stop();
      expect(json.output()).toMatch(/^\{"level":30,.*"msg":"broker started"/m);
      const bad = await runCli(['start', '--node-id', 'n1', '--log-format', 'fancy']);
      expect(bad.code, bad.output).toBe(2);
      expect(bad.output).toContain("'--log-format': must be one of pretty, json");
    } finally {
      await nats.stop();
    }
  });
});

describe('peerbroker config on a cluster with no node (JetStream off)', () => {
  const nats = natsForSuite();

  it('fails with exit code 1: the change reached no node and is not kept', async () => {
    const r = await runCli(['config', 'set', 'threshold=0.6', '--nats', nats().url, '--cluster', 'cli-empty']);
    expect(r.code, r.output).toBe(1);
    expect(r.output).toContain("no node of cluster 'cli-empty' is listening and JetStream is off");
  });
});

describe('peerbroker config on a cluster with no node (JetStream on)', () => {
  const nats = natsForSuite({ jetstream: true });
  const config = (...args: string[]) => runCli(['config', ...args, '--nats', nats().url, '--cluster', 'cli-empty']);

  it('says that no node is listening, and that the change is kept for nodes that start later', async () => {
    const r = await config('set', 'threshold=0.6');
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain("no node of cluster 'cli-empty' is listening");
    expect(r.output).toContain('nodes that start later take it');
  });

  it('prints the keys with the spelling config set takes (period-ms, not periodMs)', async () => {
    const set = await config('set', 'period-ms=250', 'max-hops=3', 'forward-legacy=true');
    expect(set.code, set.output).toBe(0);
    expect(set.output).not.toMatch(/periodMs|maxHops|forwardLegacy/);
    const get = await config('get');
    expect(get.code, get.output).toBe(0);
    const kept = JSON.parse(get.output.slice(get.output.indexOf('{')));
    expect(kept.values).toEqual({ threshold: 0.6, 'period-ms': 250, 'max-hops': 3, 'forward-legacy': true });
  });
});
