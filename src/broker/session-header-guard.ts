import { MD_SESSION } from '../wire';

/**
 * What a `peerbroker-session` value that is not printable ASCII is replaced with: printable
 * itself, so grpc-js keeps it, and malformed, so the gate answers INVALID_ARGUMENT.
 */
export const NOT_PRINTABLE = '!not-printable-ascii';

// What grpc-js accepts in a metadata value whose key does not end in -bin (metadata.ts).
const PRINTABLE = /^[ -~]*$/;

/**
 * grpc-js drops a header value that is not printable ASCII before any handler sees it
 * (it logs `Failed to add metadata entry`), so a session token with such characters
 * would reach the gate as no token at all, and the call would be balanced as one
 * without a session. This is run on the raw HTTP/2 headers of every call before grpc-js
 * reads them (connection-limits.ts hooks the servers) and replaces such a token with
 * `NOT_PRINTABLE`, which the gate refuses as malformed.
 */
export function markNotPrintable(headers: Record<string, string | string[] | undefined>): void {
  const v = headers[MD_SESSION];
  if (v === undefined) return;
  if (typeof v === 'string' ? !PRINTABLE.test(v) : v.some((x) => !PRINTABLE.test(x))) headers[MD_SESSION] = NOT_PRINTABLE;
}
