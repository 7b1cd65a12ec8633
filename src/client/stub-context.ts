import type { ChannelPool } from '../transport';
import type { Membership } from './membership';
import type { AdvisedRouting } from './routing';

/** Default number of redirects a call follows before the stub gives up. */
export const DEFAULT_MAX_REDIRECTS = 3;
/** Default number of other members a call is retried on when its node cannot be reached. */
export const DEFAULT_MAX_FAILOVERS = 2;
/** Default number of messages a streaming-request call holds (for replay) before a node accepts it. */
export const DEFAULT_MAX_HELD_MESSAGES = 64;

/** What the stub counts, for tests and metrics (`client.peerbroker.stats`). */
export interface StubStats {
  redirectsFollowed: number;
  redirectsRefused: number;
  failovers: number;
}

/** What every call of a stub shares: its channels, members, routing, limits and session. */
export interface StubContext {
  pool: ChannelPool;
  members: Membership;
  /** Where first attempts go, and what answers teach (see routing.ts). */
  routing: AdvisedRouting;
  maxRedirects: number;
  /** Other members a call may be retried on when its node is unreachable. */
  maxFailovers: number;
  /** Messages of a streaming-request call held before the node accepts. */
  maxHeldMessages: number;
  /** Paths (`/pkg.Service/Method`) safe to run twice: retried on another member after a mid-call failure. */
  idempotent: ReadonlySet<string>;
  stats: StubStats;
  /** The session this client is in: the token is sent on every call while set, to the node that owns it. */
  session: { token: string; endpoint?: string };
  /** The first configured endpoint. */
  origin: string;
}
