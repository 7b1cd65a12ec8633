import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readConfigFile, toBrokerOptions } from '../../../src/cli/start-config';
import { parseAssignments } from '../../../src/cli/config-command';
import { configErrorOf as errorOf } from '../../helpers/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerbroker-start-config-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('start settings from flags and YAML', () => {
  it('maps flag names to broker options, splitting comma-separated lists', () => {
    const o = toBrokerOptions({ 'node-id': 'n1', 'max-hops': 3, 'offline-after': 4, services: 'bank.Banking, bank.Securities', takeover: false, 'log-level': 'debug' });
    expect(o).toMatchObject({ nodeId: 'n1', maxHops: 3, offlineAfterPeriods: 4, services: ['bank.Banking', 'bank.Securities'], takeover: false, logLevel: 'debug' });
  });

  it('names a bad value as the user spelled it', () => {
    expect(errorOf(() => toBrokerOptions({ 'node-id': 'n1', 'max-hops': -1 })).field).toBe('max-hops');
    expect(errorOf(() => toBrokerOptions({ 'node-id': 'n1', 'max-hops': -1 }, (f) => `--${f}`)).field).toBe('--max-hops');
    expect(errorOf(() => toBrokerOptions({ 'node-id': 'n1', sessions: [{ enter: 'x' }] })).field).toBe('sessions[0].enter');
    expect(errorOf(() => toBrokerOptions({ 'max-hops': 1 }, (f) => `--${f}`)).message).toBe("invalid config: '--node-id': is required");
  });

  it('takes the server limits as flags and any grpc-js server option under server-options in YAML', () => {
    const file = path.join(dir, 'server.yaml');
    fs.writeFileSync(file, 'node-id: n1\nmax-connections: 500\nkeepalive-time-ms: 30000\nserver-options:\n  grpc.max_metadata_size: 16384\n');
    expect(toBrokerOptions(readConfigFile(file))).toMatchObject({ maxConnections: 500, keepaliveTimeMs: 30_000, serverOptions: { 'grpc.max_metadata_size': 16384 } });
    fs.writeFileSync(file, 'node-id: n1\nserver-options:\n  max_metadata_size: 16384\n');
    expect(errorOf(() => toBrokerOptions(readConfigFile(file))).field).toBe('server-options');
    expect(errorOf(() => toBrokerOptions({ 'node-id': 'n1', 'max-streams': 0 }, (f) => `--${f}`)).field).toBe('--max-streams');
  });

  it('refuses an unknown YAML key, and a wrong type, naming the key', () => {
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(file, 'node-id: n1\nthresold: 0.7\n');
    expect(errorOf(() => readConfigFile(file)).field).toBe('thresold');
    fs.writeFileSync(file, 'node-id: n1\nthreshold: "high"\n');
    expect(errorOf(() => toBrokerOptions(readConfigFile(file))).field).toBe('threshold');
  });
});

describe('config set keys', () => {
  it('are the flag names of the runtime options', () => {
    expect(parseAssignments(['period-ms=250', 'max-hops=3', 'forward-legacy=true'])).toEqual({ periodMs: 250, maxHops: 3, forwardLegacy: true });
    expect(errorOf(() => parseAssignments(['periodMs=250'])).message).toContain("'periodMs': is not a runtime setting (known: threshold, margin, period-ms,");
    expect(errorOf(() => parseAssignments(['capacity=3'])).field).toBe('capacity');
  });
});
