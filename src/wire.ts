/**
 * The wire contract (docs/design.md): gRPC metadata keys shared by the broker and the stub.
 * Keys are lowercase ASCII, as HTTP/2 requires.
 */

/**
 * client → node: `1` when the client follows redirects; `2` when it also spreads its calls
 * as nodes advise (`peerbroker-advice`): such calls move only when they would queue.
 */
export const MD_FOLLOW = 'peerbroker-follow';
/** client → node: `1` asks for the current advice in this call's response headers (read on calls marked `peerbroker-follow: 2`). */
export const MD_ADVISE_ME = 'peerbroker-advise-me';
/**
 * node → client: where to send the next calls of this service and for how long:
 * `ttl=<ms>; <host:port>=<percent>, ...`. In every redirect's trailers, and in the
 * response headers of a call that asked (`peerbroker-advise-me`).
 */
export const MD_ADVICE = 'peerbroker-advice';
/** client → node: how many redirects this call has followed so far. */
export const MD_HOPS = 'peerbroker-hops';

/**
 * `peerbroker-follow` read: 0 (does not follow), 1 (follows redirects), 2 (follows and spreads
 * its calls by advice); undefined when absent, null when malformed. Each side decides what
 * absent and malformed mean: the gate treats both as 0 (a plain gRPC client cannot follow),
 * the HTTP side takes absent as 1 (browsers follow a 307) and refuses malformed with 400.
 */
export function parseFollow(value: unknown): 0 | 1 | 2 | undefined | null {
  if (value === '1') return 1;
  if (value === '2') return 2;
  if (value === '0') return 0;
  return value === undefined ? undefined : null;
}

/**
 * `peerbroker-hops` as a count. A value that is not a small non-negative integer (at most
 * three digits) is treated as the hop limit: the call runs where it is and is never
 * bounced again. Read digit by digit: it runs on every call that follows.
 */
export function parseHops(value: unknown, maxHops: number): number {
  if (value === undefined) return 0;
  if (typeof value !== 'string' || value.length === 0 || value.length > 3) return maxHops;
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const digit = value.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return maxHops;
    n = n * 10 + digit;
  }
  return n;
}

/**
 * node → node: the `peerbroker-hops` value of a call a node relays for a plain client
 * (`forwardLegacy`). The receiving node runs it or fails it, never moves it again,
 * whatever either node's hop limit; a node that does not know the value reads it as
 * malformed, which is the hop limit too.
 */
export const HOPS_FORWARDED = 'forwarded';
/** both ways: session token `<nodeId>.<random>`. */
export const MD_SESSION = 'peerbroker-session';
/** node → client (headers): id of the node that accepted the call. */
export const MD_NODE = 'peerbroker-node';
/** node → client (trailers): `host:port` to retry on; present only on a redirect. */
export const MD_LOCATION = 'peerbroker-location';
/** node → client (trailers): node id of that location. */
export const MD_LOCATION_NODE = 'peerbroker-location-node';
/** node → client (trailers): why the call was redirected. */
export const MD_REASON = 'peerbroker-reason';

/** Why a node sent a call elsewhere. */
export type RedirectReason = 'load' | 'service' | 'session' | 'draining' | 'unhealthy';

/** Splits `/pkg.Service/Method` into service and method; null when malformed. */
export function splitMethodPath(path: string): { service: string; method: string } | null {
  const slash = path.indexOf('/', 1);
  if (path.charCodeAt(0) !== 47 || slash < 2 || slash === path.length - 1) return null;
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}

/** A parsed `host:port`. */
export interface HostPort {
  /** The host as written: a name, an IPv4 address, or an IPv6 address in brackets. */
  host: string;
  port: number;
  /** The host as `net` takes it (`listen`, `connect`, `isIP`): without IPv6 brackets. */
  ip: string;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** Parses `host:port` (IPv6 hosts in brackets); undefined when it is not one. */
export function tryParseHostPort(value: string): HostPort | undefined {
  const m = HOST_PORT.exec(value);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  const host = m[1];
  return { host, port, ip: host.charCodeAt(0) === 91 ? host.slice(1, -1) : host };
}

/** Parses `host:port` (IPv6 hosts in brackets); throws a message naming the value. */
export function parseHostPort(value: string): HostPort {
  const hp = tryParseHostPort(value);
  if (hp) return hp;
  const m = HOST_PORT.exec(value);
  throw new Error(m ? `'${value}': port ${Number(m[2])} is out of range` : `'${value}' is not host:port`);
}

/** True when `value` is `host:port` (what `parseHostPort` accepts); never throws. */
export function isHostPort(value: string): boolean {
  return tryParseHostPort(value) !== undefined;
}

/** Where a client should send its next calls of one service, as a node advises. */
export interface Advice {
  /** How long the advice holds, ms. */
  ttlMs: number;
  /** Endpoints and their shares of the calls (0..1, adding up to about 1). */
  shares: Array<{ endpoint: string; share: number }>;
}

/** Most endpoints an advice names; a longer one is cut (encoding) or refused (parsing). */
export const MAX_ADVICE_ENTRIES = 8;

/** `peerbroker-advice` value: `ttl=<ms>; <host:port>=<percent>, ...`. */
export function encodeAdvice(a: Advice): string {
  const parts = a.shares.slice(0, MAX_ADVICE_ENTRIES).map((s) => `${s.endpoint}=${Math.round(s.share * 100)}`);
  return `ttl=${Math.round(a.ttlMs)}; ${parts.join(', ')}`;
}

/** Parses a `peerbroker-advice` value; null when it is malformed (then it is ignored). */
export function parseAdvice(value: unknown): Advice | null {
  if (typeof value !== 'string' || value.length > 1024) return null;
  const m = /^ttl=(\d{1,7});\s*(.*)$/.exec(value);
  if (!m) return null;
  const items = m[2].split(',');
  if (items.length > MAX_ADVICE_ENTRIES) return null;
  const shares: Advice['shares'] = [];
  let total = 0;
  for (const item of items) {
    const eq = item.lastIndexOf('=');
    const endpoint = item.slice(0, eq).trim();
    const pct = Number(item.slice(eq + 1));
    if (eq < 0 || !Number.isInteger(pct) || pct < 0 || pct > 100 || !isHostPort(endpoint)) return null;
    shares.push({ endpoint, share: pct / 100 });
    total += pct;
  }
  if (total <= 0) return null;
  for (const s of shares) s.share = (s.share * 100) / total;
  return { ttlMs: Number(m[1]), shares };
}
