import { describe, expect, it } from 'vitest';
import { createLogger, prettyLine, RateLimitedLog } from '../../src/log';
import { ConfigError } from '../../src/errors';

describe('the pretty log format', () => {
  it('puts time, level, node and message first, then the other fields as key=value', () => {
    const time = new Date(2026, 0, 2, 3, 4, 5, 67).getTime();
    const line = JSON.stringify({ level: 40, time, pid: 1, hostname: 'h', name: 'peerbroker', node: 'n1', endpoint: '127.0.0.1:7001', reason: 'two words', err: { message: 'boom', stack: 'x' }, msg: 'self-check failed' });
    expect(prettyLine(line)).toBe('03:04:05.067 WARN  [n1] self-check failed endpoint=127.0.0.1:7001 reason="two words" err=boom\n');
  });

  it('keeps what is not a JSON record as it is', () => {
    expect(prettyLine('not json\n')).toBe('not json\n');
  });
});

describe('createLogger', () => {
  it('refuses an unknown level naming where it came from', () => {
    expect(() => createLogger({ level: 'loud' })).toThrow(ConfigError);
    expect(() => createLogger({ level: 'loud' })).toThrow("'logLevel': must be one of fatal, error, warn, info, debug, trace, silent");
  });
});

describe('RateLimitedLog', () => {
  it('allows one line per key per interval and says how many were held back since the last', () => {
    const log = new RateLimitedLog(1_000);
    expect(log.allow('a', 0)).toBe(0);
    expect(log.allow('a', 10)).toBe(-1);
    expect(log.allow('a', 999)).toBe(-1);
    expect(log.allow('b', 999)).toBe(0);
    expect(log.allow('a', 1_000)).toBe(2);
    expect(log.allow('a', 1_500)).toBe(-1);
    expect(log.allow('a', 2_000)).toBe(1);
  });

  it('calls maybe()\'s emitter only for a line that is allowed', () => {
    const log = new RateLimitedLog(1_000);
    const emitted: number[] = [];
    for (const t of [0, 1, 2, 1_000]) log.maybe('k', t, (suppressed) => emitted.push(suppressed));
    expect(emitted).toEqual([0, 2]);
  });
});
