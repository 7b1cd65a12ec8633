import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { cliOptions } from '../../../src/broker/option-info';
import { brokerOptionsSchema, parseBrokerOptions, RUNTIME_KEYS, type BrokerOptions } from '../../../src/broker/options';
import { configErrorOf } from '../../helpers/errors';
import { peerChoiceNames } from '../../../src/policy';

const configError = (input: Record<string, unknown>) => configErrorOf(() => parseBrokerOptions(input as unknown as BrokerOptions));

describe('parseBrokerOptions', () => {
  it('applies the documented defaults when only nodeId is given', () => {
    const o = parseBrokerOptions({ nodeId: 'n1' });
    expect(o).toMatchObject({
      nodeId: 'n1',
      threshold: 0.5,
      margin: 0.2,
      periodMs: 500,
      maxHops: 2,
      capacity: 64,
      maxQueue: 256,
      cluster: 'default',
      listen: '127.0.0.1:0',
      offlineAfterPeriods: 3,
      peerChoice: 'least-loaded-accounted',
      nats: [],
    });
    expect(o.advertise).toBeUndefined();
  });

  it('defaults maxQueue to 4 × the given capacity', () => {
    expect(parseBrokerOptions({ nodeId: 'n1', capacity: 10 }).maxQueue).toBe(40);
  });

  it('keeps an explicit maxQueue, including 0', () => {
    expect(parseBrokerOptions({ nodeId: 'n1', capacity: 10, maxQueue: 5 }).maxQueue).toBe(5);
    expect(parseBrokerOptions({ nodeId: 'n1', maxQueue: 0 }).maxQueue).toBe(0);
  });

  it('keeps the values it is given', () => {
    const given = {
      nodeId: 'n-2_b',
      listen: '127.0.0.2:7002',
      advertise: 'node2.example:7002',
      cluster: 'prod',
      threshold: 0.7,
      margin: 0.1,
      periodMs: 250,
      maxHops: 3,
      peerChoice: 'two-choices',
    };
    expect(parseBrokerOptions(given)).toMatchObject(given);
  });

  it('splits nats given as a comma-separated string, trimming spaces', () => {
    const o = parseBrokerOptions({ nodeId: 'n1', nats: 'nats://127.0.0.1:4222, nats://127.0.0.1:4223,127.0.0.1:4224' });
    expect(o.nats).toEqual(['nats://127.0.0.1:4222', 'nats://127.0.0.1:4223', '127.0.0.1:4224']);
  });

  it('keeps nats given as an array', () => {
    const o = parseBrokerOptions({ nodeId: 'n1', nats: ['tls://a.example:4222'] });
    expect(o.nats).toEqual(['tls://a.example:4222']);
  });

  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['threshold 1.5', { threshold: 1.5 }, 'threshold'],
    ['margin -1', { margin: -1 }, 'margin'],
    ['periodMs 0', { periodMs: 0 }, 'periodMs'],
    ['capacity 0', { capacity: 0 }, 'capacity'],
    ['capacity 1.5', { capacity: 1.5 }, 'capacity'],
    ['maxHops -1', { maxHops: -1 }, 'maxHops'],
    ['offlineAfterPeriods 1', { offlineAfterPeriods: 1 }, 'offlineAfterPeriods'],
    ["nodeId 'a.b'", { nodeId: 'a.b' }, 'nodeId'],
    ["nodeId 'a*'", { nodeId: 'a*' }, 'nodeId'],
    ["listen 'nohost'", { listen: 'nohost' }, 'listen'],
    ["advertise 'host:99999'", { advertise: 'host:99999' }, 'advertise'],
    ["cluster 'a.b'", { cluster: 'a.b' }, 'cluster'],
    ["threshold '0.5' (a string)", { threshold: '0.5' }, 'threshold'],
  ];

  it.each(bad)('rejects %s with a ConfigError naming the field', (_what, input, field) => {
    const err = configError({ nodeId: 'n1', ...input });
    expect(err.field).toBe(field);
    expect(err.message).toContain(`'${field}'`);
    expect(err.code).toBe(status.INVALID_ARGUMENT);
  });

  it('rejects a missing nodeId with a ConfigError naming nodeId', () => {
    const err = configError({});
    expect(err.field).toBe('nodeId');
  });

  it("rejects nats ['http://x'] with a ConfigError naming the entry", () => {
    const err = configError({ nodeId: 'n1', nats: ['http://x'] });
    expect(err.field).toBe('nats[0]');
    expect(err.message).toContain('nats');
    expect(err.message).toContain('NATS URL');
  });

  it('names the offending entry of a comma-separated nats string', () => {
    const err = configError({ nodeId: 'n1', nats: 'nats://a:4222,http://b' });
    expect(err.field).toBe('nats[1]');
  });

  it("rejects peerChoice 'nope' with a message listing the known rules", () => {
    const err = configError({ nodeId: 'n1', peerChoice: 'nope' });
    expect(err.field).toBe('peerChoice');
    expect(err.message).toContain('peerChoice');
    for (const name of peerChoiceNames()) expect(err.message).toContain(name);
  });

  it('rejects the misspelt key thresold as an unknown option', () => {
    const err = configError({ nodeId: 'n1', thresold: 0.7 });
    expect(err.field).toBe('thresold');
    expect(err.message).toContain("'thresold'");
    expect(err.message).toContain('not a known option');
  });
});

describe('the options schema as the command line sees it', () => {
  const flags = cliOptions(brokerOptionsSchema.shape);

  it('gives every option that can be written down a kebab-case flag and YAML key', () => {
    expect(flags.map((o) => o.flag)).toEqual([
      'node-id', 'listen', 'advertise', 'http-listen', 'http-advertise', 'http-max-body-bytes', 'http-allow-origins', 'cluster', 'nats', 'capacity', 'max-queue', 'max-sessions', 'cancel-grace-ms',
      'max-connections', 'max-streams', 'max-concurrent-streams', 'max-connection-idle-ms', 'max-connection-age-ms', 'max-connection-age-grace-ms',
      'keepalive-time-ms', 'keepalive-timeout-ms', 'max-receive-message-bytes', 'max-send-message-bytes', 'max-session-memory-mb', 'server-options',
      'threshold', 'margin', 'period-ms',
      'offline-after', 'max-hops', 'peer-choice', 'meters', 'services', 'forward-legacy', 'sessions', 'dedicated', 'reflection',
      'takeover', 'takeover-on-leave', 'takeover-addresses', 'on-adopt', 'on-release', 'reclaim-timeout-ms', 'max-loop-delay-ms', 'drain-grace-ms',
      'tls-cert', 'tls-key', 'tls-ca', 'nats-user', 'nats-pass', 'nats-pass-file', 'nats-token', 'nats-token-file',
      'nats-nkey-seed-file', 'nats-creds', 'nats-tls-ca', 'nats-tls-cert', 'nats-tls-key', 'cluster-key-file', 'metrics-listen', 'log-level', 'log-format',
    ]);
  });

  it('tells numbers, switches, lists and YAML-only rules apart from the schema', () => {
    const kind = (flag: string) => flags.find((o) => o.flag === flag)?.kind;
    // Meters are names or objects: the command line gives names.
    expect(kind('meters')).toBe('list');
    expect([kind('max-hops'), kind('forward-legacy'), kind('nats'), kind('services'), kind('sessions'), kind('listen')]).toEqual([
      'number', 'boolean', 'list', 'list', 'structured', 'string',
    ]);
    expect(flags.find((o) => o.flag === 'takeover')?.negated).toBe(true);
  });

  it('marks exactly the options config set may change', () => {
    expect(RUNTIME_KEYS).toEqual(['threshold', 'margin', 'periodMs', 'maxHops', 'peerChoice', 'forwardLegacy', 'sessions', 'dedicated']);
    expect(flags.filter((o) => o.runtime).map((o) => o.flag)).toEqual(['threshold', 'margin', 'period-ms', 'max-hops', 'peer-choice', 'forward-legacy', 'sessions', 'dedicated']);
  });

  it('describes every option, library-only ones too', () => {
    for (const [key, schema] of Object.entries(brokerOptionsSchema.shape)) expect(schema.description, key).toMatch(/\w{3}/);
  });

  it('rejects a bad log level naming the option and the allowed levels', () => {
    const err = configError({ nodeId: 'n1', logLevel: 'loud' });
    expect(err.message).toBe("invalid config: 'logLevel': must be one of fatal, error, warn, info, debug, trace, silent");
  });
});
