import type { Command } from 'commander';
import { connect, type NatsConnection } from 'nats';
import { z } from 'zod';
import { ClusterKey, natsConnectionOptions, type NatsAuthOptions } from '../cluster';
import { ConfigError } from '../errors';
import type { TlsFiles } from '../broker';

/** Environment variable read for the NATS password when a user is given without one. */
export const ENV_NATS_PASS = 'PEERBROKER_NATS_PASS';
/** Environment variable read for the NATS token when no other way to authenticate is given. */
export const ENV_NATS_TOKEN = 'PEERBROKER_NATS_TOKEN';

/** The security settings by flag name (also YAML keys of `peerbroker start --config`). */
export interface SecurityConfig {
  'tls-cert'?: string;
  'tls-key'?: string;
  'tls-ca'?: string;
  'nats-user'?: string;
  'nats-pass'?: string;
  'nats-pass-file'?: string;
  'nats-token'?: string;
  'nats-token-file'?: string;
  'nats-nkey-seed-file'?: string;
  'nats-creds'?: string;
  'nats-tls-ca'?: string;
  'nats-tls-cert'?: string;
  'nats-tls-key'?: string;
  'cluster-key-file'?: string;
}

const NATS_FLAGS: Array<[flag: keyof SecurityConfig, option: keyof NatsAuthOptions, help: string]> = [
  ['nats-user', 'user', 'NATS user name (password from --nats-pass-file or $PEERBROKER_NATS_PASS)'],
  ['nats-pass', 'pass', 'NATS password (visible in ps: prefer --nats-pass-file or $PEERBROKER_NATS_PASS)'],
  ['nats-pass-file', 'passFile', 'file holding the NATS password'],
  ['nats-token', 'token', 'NATS token (visible in ps: prefer --nats-token-file or $PEERBROKER_NATS_TOKEN)'],
  ['nats-token-file', 'tokenFile', 'file holding the NATS token'],
  ['nats-nkey-seed-file', 'nkeySeedFile', 'file holding an NKey user seed'],
  ['nats-creds', 'credsFile', 'NATS .creds file (user JWT and seed)'],
  ['nats-tls-ca', 'tlsCaFile', 'CA (PEM) the NATS server certificate must chain to; turns NATS TLS on'],
  ['nats-tls-cert', 'tlsCertFile', 'client certificate (PEM) for NATS'],
  ['nats-tls-key', 'tlsKeyFile', 'key of the NATS client certificate (PEM)'],
];

const GRPC_FLAGS: Array<[flag: keyof SecurityConfig, option: keyof TlsFiles, help: string]> = [
  ['tls-cert', 'certFile', 'gRPC TLS certificate chain (PEM) naming the addresses this node is reached at'],
  ['tls-key', 'keyFile', 'key of the gRPC certificate (PEM)'],
  ['tls-ca', 'caFile', 'CA (PEM): clients must present a certificate it signed; peers are checked against it'],
];

const CLUSTER_KEY_HELP = 'file holding the cluster key: reports and config changes are signed, unsigned ones dropped';

/** Option path (as ConfigErrors name it) → flag name. */
export const SECURITY_FLAG_OF: Record<string, string> = {
  ...Object.fromEntries(NATS_FLAGS.map(([flag, option]) => [`natsAuth.${option}`, flag])),
  ...Object.fromEntries(GRPC_FLAGS.map(([flag, option]) => [`tls.${option}`, flag])),
  natsAuth: 'nats-user',
  tls: 'tls-cert',
  clusterKeyFile: 'cluster-key-file',
};

/** YAML schema of the security keys (all strings: names and paths). */
export const securityFileShape = Object.fromEntries(
  [...NATS_FLAGS, ...GRPC_FLAGS].map(([flag]) => [flag, z.string()]).concat([['cluster-key-file', z.string()]]),
) as Record<keyof SecurityConfig, z.ZodString>;

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Adds the NATS auth/TLS flags and `--cluster-key-file` (and with `grpc`, the gRPC TLS flags) to a command. */
export function addSecurityOptions(cmd: Command, opts: { grpc: boolean }): Command {
  if (opts.grpc) for (const [flag, , help] of GRPC_FLAGS) cmd.option(`--${flag} <file>`, help);
  for (const [flag, , help] of NATS_FLAGS) cmd.option(`--${flag} <${flag.endsWith('user') ? 'name' : /pass$|token$/.test(flag) ? 'secret' : 'file'}>`, help);
  cmd.option('--cluster-key-file <file>', CLUSTER_KEY_HELP);
  return cmd;
}

/** The security flags commander parsed (camelCase), by flag name; secrets on the command line get a warning. */
export function securityFlags(o: Record<string, unknown>, warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): SecurityConfig {
  const out: Record<string, string> = {};
  for (const [flag] of [...NATS_FLAGS, ...GRPC_FLAGS, ['cluster-key-file'] as const]) {
    const v = o[camel(flag)];
    if (typeof v === 'string') out[flag] = v;
  }
  for (const [flag, instead] of [['nats-pass', `--nats-pass-file or $${ENV_NATS_PASS}`], ['nats-token', `--nats-token-file or $${ENV_NATS_TOKEN}`]]) {
    if (out[flag] !== undefined) warn(`peerbroker: warning: --${flag} on the command line is visible to other users (ps); prefer ${instead}`);
  }
  return out as SecurityConfig;
}

/** NATS auth options from flags/YAML keys, with the password or token from the environment when not given. */
export function natsAuthFrom(c: SecurityConfig, env: NodeJS.ProcessEnv = process.env): NatsAuthOptions | undefined {
  const a: NatsAuthOptions = {};
  for (const [flag, option] of NATS_FLAGS) if (c[flag] !== undefined) a[option] = c[flag];
  if (a.user !== undefined && a.pass === undefined && a.passFile === undefined && env[ENV_NATS_PASS]) a.pass = env[ENV_NATS_PASS];
  const other = a.user !== undefined || a.token !== undefined || a.tokenFile !== undefined || a.nkeySeedFile !== undefined || a.credsFile !== undefined;
  if (!other && env[ENV_NATS_TOKEN]) a.token = env[ENV_NATS_TOKEN];
  return Object.keys(a).length > 0 ? a : undefined;
}

/** gRPC TLS files from flags/YAML keys; undefined when none is given (the options check the rest). */
export function tlsFrom(c: SecurityConfig): TlsFiles | undefined {
  if (c['tls-cert'] === undefined && c['tls-key'] === undefined && c['tls-ca'] === undefined) return undefined;
  const t: Partial<TlsFiles> = {};
  for (const [flag, option] of GRPC_FLAGS) if (c[flag] !== undefined) t[option] = c[flag];
  return t as TlsFiles;
}

/** The cluster key named by `--cluster-key-file`, if any. */
export function clusterKeyFrom(c: SecurityConfig): ClusterKey | undefined {
  return c['cluster-key-file'] !== undefined ? ClusterKey.fromFile(c['cluster-key-file'], 'cluster-key-file') : undefined;
}

/** A ConfigError naming an option path (`natsAuth.passFile`) renamed to its flag (`nats-pass-file`). */
export function withFlagName(err: unknown): unknown {
  if (err instanceof ConfigError && SECURITY_FLAG_OF[err.field]) {
    return err.renamed(SECURITY_FLAG_OF[err.field]);
  }
  return err;
}

/** Connects a one-shot CLI command to NATS (`nats` is comma-separated); bad auth settings name their flag. */
export function connectCli(nats: string, natsAuth: NatsAuthOptions | undefined, name: string): Promise<NatsConnection> {
  const servers = nats.split(',').map((s) => s.trim()).filter(Boolean);
  if (servers.length === 0) throw new ConfigError('nats', 'is required');
  let auth;
  try {
    auth = natsConnectionOptions(natsAuth);
  } catch (err) {
    throw withFlagName(err);
  }
  return connect({ servers, name, timeout: 3_000, ...auth });
}
