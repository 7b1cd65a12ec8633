import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/** Keys whose values are secrets, at the top level and one or two levels down (`natsAuth.pass`). */
const SECRET_KEYS = ['pass', 'password', 'token', 'secret', 'secrets', 'clusterSecrets', 'private_key', 'privateKey'];
const SECRET_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

/** The root logger: JSON lines on stderr; level from PEERBROKER_LOG_LEVEL (default `info`). */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino(
    {
      name: options.name ?? 'peerbroker',
      level: options.level ?? process.env.PEERBROKER_LOG_LEVEL ?? 'info',
      // Defence in depth: nothing logs these, but an object that holds one is censored.
      redact: { paths: SECRET_PATHS, censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** Logs at most once per `intervalMs` per key; returns how many were suppressed since the last line. */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(private readonly intervalMs = 10_000) {}

  /** Calls `emit(suppressed)` unless a line with the same key was emitted within the interval. */
  maybe(key: string, now: number, emit: (suppressed: number) => void): void {
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    emit(entry?.suppressed ?? 0);
    this.last.set(key, { at: now, suppressed: 0 });
    if (this.last.size > 1000) this.last.clear(); // bound memory under hostile input
  }
}
