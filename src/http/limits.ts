/**
 * The bounds of the HTTP listener. Each says what happens past it; README "HTTP and
 * the browser" lists them for users.
 */

/**
 * Default largest request body, bytes (gRPC's default largest message): past it, 413, at once
 * when Content-Length says so, else (a chunked body) as soon as that much was read.
 */
export const DEFAULT_HTTP_MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Largest value `httpMaxBodyBytes` may take, bytes. */
export const MAX_HTTP_BODY_BYTES = 64 * 1024 * 1024;
/** Largest request head (request line and headers), bytes: past it Node answers 431 and closes. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** The request head must arrive within this, ms: past it, 408 and the connection is closed (slow-loris). */
export const HEADERS_TIMEOUT_MS = 10_000;
/** The whole request (head and body) must arrive within this, ms: past it, 408 and closed. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** An idle keep-alive connection is closed after this, ms. */
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/**
 * A streamed answer (NDJSON, Connect streaming) whose reader takes nothing for this long, ms,
 * while data waits: the call is cancelled and the connection closed, so a stalled reader
 * cannot hold a slot or memory. (The page's event streams are bounded by bytes instead:
 * MAX_EVENT_BACKLOG_BYTES.)
 */
export const SLOW_READER_MS = 30_000;
/** Most server-sent event streams (open cluster pages) per node: past it, 503 with Retry-After. */
export const MAX_EVENT_STREAMS = 32;
/** Bytes an event stream may have waiting for its reader before it is closed (the page reconnects). */
export const MAX_EVENT_BACKLOG_BYTES = 1024 * 1024;
/** Longest `connect-timeout-ms` honoured, ms (a larger value is cut to this). */
export const MAX_TIMEOUT_MS = 24 * 3_600_000;
