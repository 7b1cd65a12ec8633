import * as fs from 'node:fs';
import pino, { type Logger } from 'pino';
import { ConfigError } from './errors';

export type { Logger } from 'pino';

/** Log levels, most severe first. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];
/** `pretty`: one line a record for people at a terminal; `json`: one JSON object a line, for machines. */
export const LOG_FORMATS = ['pretty', 'json'] as const;
/** A log format. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Keys whose values are secrets, at the top level and one or two levels down (`natsAuth.pass`). */
const SECRET_KEYS = ['pass', 'password', 'token', 'secret', 'secrets', 'clusterSecrets', 'private_key', 'privateKey', 'tlsLoaded'];
const SECRET_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

/**
 * The root logger, on stderr: level from `level`, else PEERBROKER_LOG_LEVEL, else `info`;
 * `pretty` lines when stderr is a terminal, JSON lines otherwise, unless `format` says.
 */
export function createLogger(options: { level?: string; format?: LogFormat; name?: string } = {}): Logger {
  const level = options.level ?? process.env.PEERBROKER_LOG_LEVEL ?? 'info';
  // pino's own error for a bad level ("default level:x must be included in custom levels") names neither.
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError(options.level !== undefined ? 'logLevel' : 'PEERBROKER_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  }
  const format = options.format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const colors = format === 'pretty' && process.stderr.isTTY === true && !process.env.NO_COLOR;
  return pino(
    {
      name: options.name ?? 'peerbroker',
      level,
      // Defence in depth: nothing logs these, but an object that holds one is censored.
      redact: { paths: SECRET_PATHS, censor: '[redacted]' },
    },
    // Synchronous writes, so the last lines before an exit are not lost.
    format === 'json' ? pino.destination({ fd: 2, sync: true }) : { write: (line: string) => void fs.writeSync(2, prettyLine(line, colors)) },
  );
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLORS: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };
// Shown elsewhere in the line, or of no use to a person reading it.
const NOT_SHOWN = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'node', 'part']);

/**
 * One pino JSON line as a person reads it: `12:04:05.123 INFO  [n1] broker started endpoint=127.0.0.1:7001`.
 * Written here rather than taken from pino-pretty: a dozen lines instead of a dozen
 * dependencies, and it runs in-process and synchronously like the JSON output.
 */
export function prettyLine(line: string, colors = false): string {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = Number(r.level);
  const name = (LEVEL_NAMES[level] ?? String(r.level)).padEnd(5);
  const time = new Date(Number(r.time)).toTimeString().slice(0, 8) + '.' + String(Number(r.time) % 1000).padStart(3, '0');
  const who = [r.node, r.part].filter((v) => v !== undefined).join(' ');
  const fields = Object.entries(r)
    .filter(([k]) => !NOT_SHOWN.has(k))
    .map(([k, v]) => `${k}=${k === 'err' && typeof v === 'object' && v !== null && 'message' in v ? String(v.message) : typeof v === 'string' && !/[\s"=]/.test(v) ? v : JSON.stringify(v)}`);
  const head = colors ? `\x1b[${LEVEL_COLORS[level] ?? '0'}m${name}\x1b[0m` : name;
  return `${[time, head, who ? `[${who}]` : '', r.msg ?? '', ...fields].filter((p) => p !== '').join(' ')}\n`;
}

/** Logs at most once per `intervalMs` per key; returns how many were suppressed since the last line. */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(private readonly intervalMs = 10_000) {}

  /**
   * Whether a line with `key` may be written at `now`: how many were suppressed since the
   * last one (0 or more), or -1 when one was written within the interval (this one is
   * counted as suppressed). Hot paths ask before they build anything of the line.
   */
  allow(key: string, now: number): number {
    const entry = this.last.get(key);
    if (entry === undefined) {
      if (this.last.size >= 1000) this.last.clear(); // bound memory under hostile input
      this.last.set(key, { at: now, suppressed: 0 });
      return 0;
    }
    if (now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return -1;
    }
    const suppressed = entry.suppressed;
    entry.at = now;
    entry.suppressed = 0;
    return suppressed;
  }

  /** Calls `emit(suppressed)` unless a line with the same key was emitted within the interval. */
  maybe(key: string, now: number, emit: (suppressed: number) => void): void {
    const suppressed = this.allow(key, now);
    if (suppressed >= 0) emit(suppressed);
  }
}
