import type * as grpc from '@grpc/grpc-js';
import { z } from 'zod';
import { option } from './option-info';

/** Default period of the server's keepalive pings on each connection, ms. */
export const DEFAULT_KEEPALIVE_TIME_MS = 60_000;
/** Default time a keepalive ping may go unanswered before the connection is closed, ms. */
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 20_000;
/** Default time a connection with no call open is kept, ms (the stub closes its idle channels after as long). */
export const DEFAULT_MAX_CONNECTION_IDLE_MS = 300_000;
/** Default calls one connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 1_000;
/** Default largest request message, bytes (grpc-js's own default). */
export const DEFAULT_MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Default memory one connection's HTTP/2 session may hold before it refuses new calls, MB. */
export const DEFAULT_MAX_SESSION_MEMORY_MB = 64;
/** Default cap on connections, unless 3/4 of the open-file limit is lower. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;
/** Lowest default cap on open calls (streams); it grows with capacity + maxQueue. */
export const MIN_DEFAULT_MAX_STREAMS = 10_000;

const MAX_MS = 2_147_483_647;
const ms = () => z.number().int().min(0).max(MAX_MS);

/** The keys grpc-js takes in its server options: channel arguments and `interceptors`. */
function isServerOptions(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  for (const [k, x] of Object.entries(v)) {
    if (k === 'interceptors') {
      if (!Array.isArray(x) || !x.every((i) => typeof i === 'function')) return false;
    } else if (!/^grpc(-node)?\./.test(k)) return false;
  }
  return true;
}

/**
 * The broker's options for its gRPC server and the limits on connections and calls, spread
 * into `brokerOptionsSchema` (so each is declared once, like every option). Past each
 * limit: see README, "Server options and limits".
 */
export const serverOptionsShape = {
  maxConnections: option(z.number().int().min(1).max(10_000_000).optional(), {
    description: 'connections this node holds at once, on all its addresses; past that a new one is closed at once; from 90% the node is UNHEALTHY',
    arg: 'n',
    defaultText: '10000, or 3/4 of the open-file limit if lower',
  }),
  maxStreams: option(z.number().int().min(1).max(100_000_000).optional(), {
    description: 'calls (HTTP/2 streams) open on this node at once, on all connections; past that a call fails with RESOURCE_EXHAUSTED before it reaches a handler; from 90% the node is UNHEALTHY',
    arg: 'n',
    defaultText: 'the larger of 10000 and 2 x (capacity + max queue)',
  }),
  maxConcurrentStreams: option(z.number().int().min(1).max(MAX_MS).default(DEFAULT_MAX_CONCURRENT_STREAMS), {
    description: 'calls one connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); a client holds back the rest',
    arg: 'n',
  }),
  maxConnectionIdleMs: option(ms().default(DEFAULT_MAX_CONNECTION_IDLE_MS), {
    description: 'a connection with no call open for this long is closed (GOAWAY), ms; 0: never',
    arg: 'ms',
  }),
  maxConnectionAgeMs: option(ms().min(1).optional(), {
    description: 'connections are closed (GOAWAY) after about this long (±10%), so clients reconnect and spread, ms',
    arg: 'ms',
    defaultText: 'never',
  }),
  maxConnectionAgeGraceMs: option(ms().optional(), {
    description: 'after a GOAWAY for age, how long calls still open may take before the connection is cut, ms',
    arg: 'ms',
    defaultText: 'no limit',
  }),
  keepaliveTimeMs: option(ms().default(DEFAULT_KEEPALIVE_TIME_MS), {
    description: 'ping every connection this often to find dead peers, ms; 0: never',
    arg: 'ms',
  }),
  keepaliveTimeoutMs: option(ms().min(1).default(DEFAULT_KEEPALIVE_TIMEOUT_MS), {
    description: 'a connection whose keepalive ping is not answered within this is closed, ms',
    arg: 'ms',
  }),
  maxReceiveMessageBytes: option(z.number().int().min(1).max(MAX_MS).default(DEFAULT_MAX_RECEIVE_MESSAGE_BYTES), {
    description: 'largest request message accepted, bytes; a larger one fails its call with RESOURCE_EXHAUSTED',
    arg: 'bytes',
  }),
  maxSendMessageBytes: option(z.number().int().min(1).max(MAX_MS).optional(), {
    description: 'largest response message sent, bytes; a larger one fails its call with RESOURCE_EXHAUSTED',
    arg: 'bytes',
    defaultText: 'no limit',
  }),
  maxSessionMemoryMb: option(z.number().int().min(1).max(1_000_000).default(DEFAULT_MAX_SESSION_MEMORY_MB), {
    description: "memory one connection's HTTP/2 session may hold (headers, data queued to send), MB; past that it refuses new calls",
    arg: 'mb',
  }),
  serverOptions: option(z.custom<grpc.ServerOptions>(isServerOptions, "must be grpc-js server options: 'grpc.*' or 'grpc-node.*' keys, and interceptors (an array of functions)").optional(), {
    description: 'grpc-js server options (interceptors included), applied over those made from the options above',
  }),
};

/** The options `grpcServerOptions` reads. */
export interface ServerOptionValues {
  maxConcurrentStreams: number;
  maxConnectionIdleMs: number;
  maxConnectionAgeMs?: number;
  maxConnectionAgeGraceMs?: number;
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  maxReceiveMessageBytes: number;
  maxSendMessageBytes?: number;
  maxSessionMemoryMb: number;
  serverOptions?: grpc.ServerOptions;
}

/** The grpc-js server options of a broker: the named options as channel arguments, then `serverOptions` over them. */
export function grpcServerOptions(o: ServerOptionValues): grpc.ServerOptions {
  const out: grpc.ServerOptions = {
    'grpc.max_concurrent_streams': o.maxConcurrentStreams,
    'grpc.keepalive_time_ms': o.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': o.keepaliveTimeoutMs,
    'grpc.max_receive_message_length': o.maxReceiveMessageBytes,
    'grpc-node.max_session_memory': o.maxSessionMemoryMb,
  };
  // grpc-js reads an idle time of 0 as "close at once"; here it means never (grpc-js's default).
  if (o.maxConnectionIdleMs > 0) out['grpc.max_connection_idle_ms'] = o.maxConnectionIdleMs;
  if (o.maxConnectionAgeMs !== undefined) out['grpc.max_connection_age_ms'] = o.maxConnectionAgeMs;
  if (o.maxConnectionAgeGraceMs !== undefined) out['grpc.max_connection_age_grace_ms'] = o.maxConnectionAgeGraceMs;
  if (o.maxSendMessageBytes !== undefined) out['grpc.max_send_message_length'] = o.maxSendMessageBytes;
  return { ...out, ...o.serverOptions };
}
