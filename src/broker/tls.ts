import { inspect } from 'node:util';
import * as fs from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { z } from 'zod';
import { describeNatsAuth, type ClusterKey, type NatsAuthOptions } from '../cluster';
import { ConfigError } from '../errors';
import type { Logger } from '../log';
import { parseHostPort } from '../wire';

/** Schema of TlsFiles (the files are read by `loadTls`). */
export const tlsFilesSchema = z
  .object({
    /** This node's certificate chain (PEM); it must name every address the node is reached at. */
    certFile: z.string().min(1),
    /** The certificate's private key (PEM). */
    keyFile: z.string().min(1),
    /**
     * CA certificates (PEM). When given, clients must present a certificate signed by
     * them, and peers' certificates are checked against them; otherwise the system's
     * roots check peers and clients need no certificate. Default none.
     */
    caFile: z.string().min(1).optional(),
  })
  .strict();

/** gRPC TLS of a node, as PEM files. */
export type TlsFiles = z.infer<typeof tlsFilesSchema>;

/** The PEM contents of TlsFiles, checked. Kept private by the broker; never logged. */
export interface LoadedTls {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

function read(file: string, field: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new ConfigError(field, `cannot read '${file}': ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

function isCertificate(pem: Buffer): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}

/** Reads and checks the files (the key matches the certificate); errors name the field (`tls.keyFile`). */
export function loadTls(files: TlsFiles): LoadedTls {
  const cert = read(files.certFile, 'tls.certFile');
  const key = read(files.keyFile, 'tls.keyFile');
  const ca = files.caFile !== undefined ? read(files.caFile, 'tls.caFile') : undefined;
  if (!isCertificate(cert)) throw new ConfigError('tls.certFile', `'${files.certFile}' is not a PEM certificate`);
  if (ca && !isCertificate(ca)) throw new ConfigError('tls.caFile', `'${files.caFile}' is not a PEM certificate`);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    // OpenSSL's message says what is wrong ("key values mismatch"), never the key.
    const why = String((err as Error).message).replace(/^error:[0-9A-F]+:/i, '').slice(0, 80);
    throw new ConfigError('tls.keyFile', `'${files.keyFile}' is not the key of '${files.certFile}' (${why})`);
  }
  // The key is kept out of JSON and console output (resolved options hold this object).
  const hidden = (): string => '[TLS files: certificate and key]';
  return { cert, key, ca, toJSON: hidden, [inspect.custom]: hidden } as LoadedTls;
}

/** Server credentials: this node's certificate; with a CA, client certificates are required. */
export function serverCredentials(t: LoadedTls): grpc.ServerCredentials {
  return grpc.ServerCredentials.createSsl(t.ca ?? null, [{ cert_chain: t.cert, private_key: t.key }], t.ca !== undefined);
}

/**
 * Credentials this node uses to call its peers (forwarded calls): the same certificate
 * as a client certificate, and the CA (else the system's roots) to check the peer,
 * whose certificate must name the endpoint called.
 */
export function peerCredentials(t: LoadedTls): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(t.ca ?? null, t.key, t.cert);
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') ? host.slice(1, -1) : host;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::1' || h === 'localhost' || /^::ffff:127\./i.test(h);
}

/**
 * The warning a node logs once at start when it serves plaintext gRPC on an address
 * other machines can reach (anyone there can call it and be redirected); undefined
 * when TLS is on or the address is loopback.
 */
export function plaintextWarning(listenHost: string, secure: boolean): string | undefined {
  if (secure || isLoopbackHost(listenHost)) return undefined;
  return `listening on '${listenHost}' without TLS: anyone who can reach it can call it and be redirected; set --tls-cert and --tls-key (and --tls-ca to require client certificates)`;
}

/** What a broker's server credentials, TLS and NATS security come from (its resolved options). */
export interface SecurityOptions {
  listen: string;
  serverCredentials?: grpc.ServerCredentials;
  tls?: TlsFiles;
  natsAuth?: NatsAuthOptions;
  clusterKey?: ClusterKey;
}

/** The listen credentials: TLS from files, else the given credentials, else plaintext (warned off loopback). */
export function listenCredentials(o: SecurityOptions, files: LoadedTls | undefined, log: Logger): grpc.ServerCredentials {
  const creds = o.serverCredentials ?? (files ? serverCredentials(files) : grpc.ServerCredentials.createInsecure());
  const warning = plaintextWarning(parseHostPort(o.listen).host, creds._isSecure());
  if (warning) log.warn({ listen: o.listen }, warning);
  return creds;
}

/** What protects a node, for its start log line: names and ids, never a secret. */
export function securitySummary(o: SecurityOptions): Record<string, string> {
  const grpcTls = o.tls ? (o.tls.caFile ? 'tls, client certificates required' : 'tls') : o.serverCredentials?._isSecure() ? 'tls (credentials given)' : 'plaintext';
  return {
    grpc: grpcTls,
    nats: describeNatsAuth(o.natsAuth),
    reports: o.clusterKey ? `signed (key ${o.clusterKey.id})` : 'unsigned',
  };
}
