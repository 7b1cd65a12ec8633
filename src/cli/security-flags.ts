import { connect, type NatsConnection } from 'nats';
import { brokerOptionsSchema, cliOptions } from '../broker';
import { natsConnectionOptions, redactUrl, type NatsAuthOptions } from '../cluster';
import { ConfigError } from '../errors';

/** Environment variable read for the NATS password when a user is given without one. */
export const ENV_NATS_PASS = 'PEERBROKER_NATS_PASS';
/** Environment variable read for the NATS token when no other way to authenticate is given. */
export const ENV_NATS_TOKEN = 'PEERBROKER_NATS_TOKEN';

/** The security settings by flag name (`nats-user`, `tls-cert`, ...; also YAML keys). */
export type SecurityConfig = Record<string, unknown>;

// The flags of the object options (`tls`, `natsAuth`), as the options schema declares them.
const FIELD_FLAGS = cliOptions(brokerOptionsSchema.shape).filter((o) => o.field !== undefined);

/** The object option `key` (`tls`) from its fields' flags; undefined when none is given. */
export function nested(key: string, c: SecurityConfig): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  for (const o of FIELD_FLAGS) if (o.key === key && c[o.flag] !== undefined) out[o.field!] = c[o.flag];
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Warns, without repeating it, of a password or token given on the command line (visible in `ps`). */
export function warnOfSecrets(given: SecurityConfig, warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): void {
  for (const [flag, instead] of [['nats-pass', `--nats-pass-file or $${ENV_NATS_PASS}`], ['nats-token', `--nats-token-file or $${ENV_NATS_TOKEN}`]]) {
    if (given[flag] !== undefined) warn(`peerbroker: warning: --${flag} on the command line is visible to other users (ps); prefer ${instead}`);
  }
}

/** NATS auth options from flags/YAML keys, with the password or token from the environment when not given. */
export function natsAuthFrom(c: SecurityConfig, env: NodeJS.ProcessEnv = process.env): NatsAuthOptions | undefined {
  const a: NatsAuthOptions = (nested('natsAuth', c) as NatsAuthOptions | undefined) ?? {};
  if (a.user !== undefined && a.pass === undefined && a.passFile === undefined && env[ENV_NATS_PASS]) a.pass = env[ENV_NATS_PASS];
  const other = a.user !== undefined || a.token !== undefined || a.tokenFile !== undefined || a.nkeySeedFile !== undefined || a.credsFile !== undefined;
  if (!other && env[ENV_NATS_TOKEN]) a.token = env[ENV_NATS_TOKEN];
  return Object.keys(a).length > 0 ? a : undefined;
}

/**
 * Connects a one-shot CLI command to NATS; a server that cannot be reached is named
 * in the error (without credentials), which nats.js leaves out.
 */
export async function connectCli(servers: string[], natsAuth: NatsAuthOptions | undefined, name: string): Promise<NatsConnection> {
  if (servers.length === 0) throw new ConfigError('nats', 'is required');
  const auth = natsConnectionOptions(natsAuth);
  try {
    return await connect({ servers, name, timeout: 3_000, ...auth });
  } catch (err) {
    const code = (err as { code?: string }).code ?? (err as Error).message;
    throw new Error(`cannot connect to NATS at ${servers.map(redactUrl).join(', ')}: ${code}`, { cause: err });
  }
}
