import type { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { MD_SESSION } from '../wire';

/**
 * What a `peerbroker-session` value that is not printable ASCII is replaced with: printable
 * itself, so grpc-js keeps it, and malformed, so the gate answers INVALID_ARGUMENT.
 */
export const NOT_PRINTABLE = '!not-printable-ascii';

// What grpc-js accepts in a metadata value whose key does not end in -bin (metadata.ts).
const PRINTABLE = /^[ -~]*$/;

const guarded = new WeakSet<object>();

/**
 * grpc-js drops a header value that is not printable ASCII before any handler sees it
 * (it logs `Failed to add metadata entry`), so a session token with such characters
 * would reach the gate as no token at all, and the call would be balanced as one
 * without a session. This looks at the raw HTTP/2 headers first and replaces such a
 * token with `NOT_PRINTABLE`, which the gate refuses as malformed.
 *
 * grpc-js has no public hook for raw headers: this uses its HTTP/2 servers
 * (`Server.http2Servers`, private). Call it after every bind; returns false when that
 * field is not there (another grpc-js version), and then nothing is checked
 * (test/integration/session-tokens.test.ts fails in that case).
 */
export function guardSessionHeaders(server: grpc.Server): boolean {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) return false;
  for (const s of servers.keys() as IterableIterator<EventEmitter>) {
    if (guarded.has(s)) continue;
    guarded.add(s);
    // First, so grpc-js (which listens to the same event) reads the replaced value.
    s.prependListener('stream', markNotPrintable);
  }
  return true;
}

function markNotPrintable(_stream: unknown, headers: Record<string, string | string[] | undefined>): void {
  const v = headers[MD_SESSION];
  if (v === undefined) return;
  if (typeof v === 'string' ? !PRINTABLE.test(v) : v.some((x) => !PRINTABLE.test(x))) headers[MD_SESSION] = NOT_PRINTABLE;
}
