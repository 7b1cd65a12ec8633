import * as fs from 'node:fs';
import {
  credsAuthenticator,
  nkeyAuthenticator,
  nkeys,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type ConnectionOptions,
} from 'nats';
import { z } from 'zod';
import { ConfigError } from '../errors';

/**
 * How a node (or `peerbroker status`/`config`) authenticates to NATS and checks the
 * server: names, file paths and plain strings only, so the options can be sent to
 * the reporter thread, which builds the `nats` authenticators itself. At most one
 * way to authenticate: user and password, token, NKey seed, or creds file.
 */
export interface NatsAuthOptions {
  /** User name; needs `pass` or `passFile`. Default none. */
  user?: string;
  /** Password (prefer `passFile`: a password given as a flag is visible in `ps`). Default none. */
  pass?: string;
  /** File holding the password (trailing white space ignored), read at each connect. Default none. */
  passFile?: string;
  /** Token (prefer `tokenFile`). Default none. */
  token?: string;
  /** File holding the token, read at each connect. Default none. */
  tokenFile?: string;
  /** File holding an NKey user seed (`SU...`). Default none. */
  nkeySeedFile?: string;
  /** A `.creds` file (user JWT and NKey seed, decentralized auth). Default none. */
  credsFile?: string;
  /** CA certificate (PEM) the server's certificate must chain to; turns TLS on. Default none. */
  tlsCaFile?: string;
  /** Client certificate (PEM), for servers that verify clients; turns TLS on. Default none. */
  tlsCertFile?: string;
  /** Key of the client certificate (PEM). Default none. */
  tlsKeyFile?: string;
}

const file = z.string().min(1, 'must be a file path');

/** Schema of NatsAuthOptions: which combinations make sense. */
export const natsAuthSchema = z
  .object({
    user: z.string().min(1).max(256).optional(),
    pass: z.string().min(1).optional(),
    passFile: file.optional(),
    token: z.string().min(1).optional(),
    tokenFile: file.optional(),
    nkeySeedFile: file.optional(),
    credsFile: file.optional(),
    tlsCaFile: file.optional(),
    tlsCertFile: file.optional(),
    tlsKeyFile: file.optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (a.pass !== undefined && a.passFile !== undefined) issue('passFile', "give the password once: 'pass' or 'passFile'");
    if (a.token !== undefined && a.tokenFile !== undefined) issue('tokenFile', "give the token once: 'token' or 'tokenFile'");
    if (a.user !== undefined && a.pass === undefined && a.passFile === undefined) issue('passFile', `user '${a.user}' needs a password`);
    if (a.user === undefined && (a.pass !== undefined || a.passFile !== undefined)) issue('user', 'a password needs a user name');
    const ways = [
      a.user !== undefined ? 'user' : '',
      a.token !== undefined || a.tokenFile !== undefined ? 'token' : '',
      a.nkeySeedFile !== undefined ? 'nkeySeedFile' : '',
      a.credsFile !== undefined ? 'credsFile' : '',
    ].filter(Boolean);
    if (ways.length > 1) issue(ways[1], `choose one way to authenticate (given: ${ways.join(', ')})`);
    if ((a.tlsCertFile === undefined) !== (a.tlsKeyFile === undefined)) {
      issue(a.tlsCertFile === undefined ? 'tlsCertFile' : 'tlsKeyFile', 'a client certificate needs both tlsCertFile and tlsKeyFile');
    }
  });

/**
 * Where a secret comes from: read now to check it, and again at every (re)connect, so
 * it can rotate. White space around it is dropped unless `raw` (a creds file needs its lines).
 */
function secretFile(path: string, field: string, raw = false): () => string {
  const read = () => {
    let text: string;
    try {
      text = fs.readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(field, `cannot read '${path}': ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    if (text.trim() === '') throw new ConfigError(field, `'${path}' is empty`);
    return raw ? text : text.trim();
  };
  let last = read();
  return () => {
    try {
      last = read();
    } catch {
      // The file went away or is being rewritten: keep using the last good value.
    }
    return last;
  };
}

function bytesFile(path: string, field: string, raw = false): () => Uint8Array {
  const text = secretFile(path, field, raw);
  return () => new TextEncoder().encode(text());
}

function checkReadable(path: string, field: string): void {
  try {
    fs.accessSync(path, fs.constants.R_OK);
  } catch (err) {
    throw new ConfigError(field, `cannot read '${path}': ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/**
 * The `nats` connection options for `auth`: an authenticator and TLS settings. Secret
 * files are read (and checked) now and again at every reconnect. Throws a ConfigError
 * naming the field (`natsAuth.passFile`), never quoting a secret.
 */
export function natsConnectionOptions(auth: NatsAuthOptions | undefined): Partial<ConnectionOptions> {
  if (!auth) return {};
  const r = natsAuthSchema.safeParse(auth);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new ConfigError(`natsAuth.${i.path.join('.')}`, i.code === 'unrecognized_keys' ? 'is not a known option' : i.message);
  }
  const a = r.data;
  const out: Partial<ConnectionOptions> = {};
  let authenticator: Authenticator | undefined;
  if (a.user !== undefined) {
    const pass = a.passFile !== undefined ? secretFile(a.passFile, 'natsAuth.passFile') : a.pass!;
    authenticator = usernamePasswordAuthenticator(a.user, pass);
  } else if (a.tokenFile !== undefined || a.token !== undefined) {
    authenticator = tokenAuthenticator(a.tokenFile !== undefined ? secretFile(a.tokenFile, 'natsAuth.tokenFile') : a.token!);
  } else if (a.nkeySeedFile !== undefined) {
    const seed = bytesFile(a.nkeySeedFile, 'natsAuth.nkeySeedFile');
    try {
      nkeys.fromSeed(seed());
    } catch {
      throw new ConfigError('natsAuth.nkeySeedFile', `'${a.nkeySeedFile}' does not hold an NKey seed`);
    }
    authenticator = nkeyAuthenticator(seed);
  } else if (a.credsFile !== undefined) {
    authenticator = credsAuthenticator(bytesFile(a.credsFile, 'natsAuth.credsFile', true));
    try {
      authenticator('peerbroker-check');
    } catch {
      throw new ConfigError('natsAuth.credsFile', `'${a.credsFile}' is not a creds file (user JWT and NKey seed)`);
    }
  }
  if (authenticator) out.authenticator = authenticator;
  if (a.tlsCaFile !== undefined || a.tlsCertFile !== undefined) {
    if (a.tlsCaFile !== undefined) checkReadable(a.tlsCaFile, 'natsAuth.tlsCaFile');
    if (a.tlsCertFile !== undefined) checkReadable(a.tlsCertFile, 'natsAuth.tlsCertFile');
    if (a.tlsKeyFile !== undefined) checkReadable(a.tlsKeyFile, 'natsAuth.tlsKeyFile');
    out.tls = { caFile: a.tlsCaFile, certFile: a.tlsCertFile, keyFile: a.tlsKeyFile };
  }
  return out;
}

/** How `auth` authenticates, for logs: names and paths, never a secret. */
export function describeNatsAuth(auth: NatsAuthOptions | undefined): string {
  if (!auth) return 'none';
  const parts: string[] = [];
  if (auth.user !== undefined) parts.push(`user '${auth.user}'${auth.passFile !== undefined ? ' (password from file)' : ''}`);
  else if (auth.tokenFile !== undefined || auth.token !== undefined) parts.push(`token${auth.tokenFile !== undefined ? ' (from file)' : ''}`);
  else if (auth.nkeySeedFile !== undefined) parts.push('nkey seed file');
  else if (auth.credsFile !== undefined) parts.push('creds file');
  if (auth.tlsCaFile !== undefined || auth.tlsCertFile !== undefined) parts.push(`tls${auth.tlsCertFile !== undefined ? ' with client certificate' : ''}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

/** A NATS URL with any `user:password@` replaced, for logs and status output. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^/@\s]*@/, '//***@');
}

/** `<operation> on '<subject>'` when a NATS status event is a permissions violation, else undefined. */
export function permissionViolation(status: unknown): string | undefined {
  const ctx = (status as { permissionContext?: { operation: string; subject: string } }).permissionContext;
  return ctx ? `${ctx.operation} on '${ctx.subject}'` : undefined;
}
