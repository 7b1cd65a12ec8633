/**
 * The wire contract of DESIGN.md: gRPC metadata keys shared by the broker and the stub.
 * Keys are lowercase ASCII, as HTTP/2 requires.
 */

/** client → node: `1` when the client follows redirects. */
export const MD_FOLLOW = 'peerbroker-follow';
/** client → node: how many redirects this call has followed so far. */
export const MD_HOPS = 'peerbroker-hops';
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

/** Parses `host:port` (IPv6 hosts in brackets); throws a message naming the value. */
export function parseHostPort(value: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  if (!m) throw new Error(`'${value}' is not host:port`);
  const port = Number(m[2]);
  if (port > 65535) throw new Error(`'${value}': port ${port} is out of range`);
  return { host: m[1], port };
}
