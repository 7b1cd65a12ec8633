/**
 * A client that follows peerbroker redirects, written from the wire contract in README.md
 * alone (no code of src/ is used): what someone in another language would write. Every call
 * enters at the first endpoint; nothing is remembered between calls but the connections.
 */
import * as grpc from '@grpc/grpc-js';

// Spelled out here, not imported from src/wire.ts: this client checks the contract as written.
const FOLLOW = 'peerbroker-follow';
const HOPS = 'peerbroker-hops';
const LOCATION = 'peerbroker-location';
/** Redirects a call may follow; the brokers' own hop limit (2 by default) ends them sooner. */
const MAX_REDIRECTS = 5;

type ClientCtor = new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client;
type UnaryFn = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void;

/** Counts of what the follower did since it was made. */
export interface FollowerStats {
  redirectsFollowed: number;
  /** Calls given up after MAX_REDIRECTS. */
  redirectsRefused: number;
}

/** A unary-call function that follows redirects; `stats` counts them. */
export function makeFollower(
  Ctor: ClientCtor,
  method: string,
  entry: string,
): { call: (req: unknown, deadline: number, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void; stats: FollowerStats; close(): void } {
  const creds = grpc.credentials.createInsecure();
  // One channel per address named so far: a connection pool, not a memory of where calls went.
  const channels = new Map<string, grpc.Client>();
  const client = (address: string) => {
    let c = channels.get(address);
    if (!c) channels.set(address, (c = new Ctor(address, creds)));
    return c;
  };
  const stats: FollowerStats = { redirectsFollowed: 0, redirectsRefused: 0 };
  const attempt = (address: string, hops: number, req: unknown, deadline: number, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => {
    const md = new grpc.Metadata();
    md.set(FOLLOW, '1');
    if (hops > 0) md.set(HOPS, String(hops));
    (client(address) as unknown as Record<string, UnaryFn>)[method](req, md, { deadline }, (err, res) => {
      // A redirect is a trailers-only RESOURCE_EXHAUSTED naming `peerbroker-location`; the
      // handler never ran, so sending the call again is safe. Without a location it is a refusal.
      const location = err?.code === grpc.status.RESOURCE_EXHAUSTED ? err.metadata?.get(LOCATION)[0] : undefined;
      if (location === undefined) return cb(err, res);
      if (hops >= MAX_REDIRECTS) {
        stats.redirectsRefused++;
        return cb(err);
      }
      stats.redirectsFollowed++;
      attempt(String(location), hops + 1, req, deadline, cb);
    });
  };
  return {
    call: (req, deadline, cb) => attempt(entry, 0, req, deadline, cb),
    stats,
    close: () => channels.forEach((c) => c.close()),
  };
}
