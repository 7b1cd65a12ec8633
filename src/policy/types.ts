import type { status } from '@grpc/grpc-js';
import type { RedirectReason } from '../wire';
import type { CompiledRules } from './rules';

/** A peer as the policy sees it: kept up to date in place by the peer view. */
export interface PeerEntry {
  readonly nodeId: string;
  endpoint: string;
  /** `ONLINE`, `DRAINING`, `UNHEALTHY`, `LEAVING` or `OFFLINE`. */
  status: PeerStatus;
  /** Calls running and queued over capacity at the last report, uncapped (a meter's load if higher): what decisions compare. */
  occupancy: number;
  /** Calls the peer queues when its slots are full: it has room while its occupancy is below 1 + maxQueue / capacity. */
  maxQueue: number;
  /** Change of this node's redirected load there since that report (local accounting; may be negative). */
  extra: number;
  capacity: number;
  services: ReadonlySet<string>;
  /** Local monotonic time (ms) the last report arrived. */
  receivedAt: number;
  /** The peer's own reporting period, ms. */
  periodMs: number;
}

export type PeerStatus = 'ONLINE' | 'DRAINING' | 'UNHEALTHY' | 'LEAVING' | 'OFFLINE';

/** What the policy knows of the call, read from its path and metadata. */
export interface CallInfo {
  /** The gRPC path `/pkg.Service/Method`. */
  path: string;
  /** `pkg.Service` part of the method path. */
  service: string;
  /** Redirects this call followed so far (`peerbroker-hops`). */
  hops: number;
  /** The client announced it follows redirects (`peerbroker-follow: 1` or `2`). */
  follows: boolean;
  /** The client also spreads its calls as nodes advise (`peerbroker-follow: 2`). */
  advised: boolean;
  /** The session token the call carries, or ''. */
  session: string;
  /** The node id part of that token, or ''. */
  sessionOwner: string;
  /** A peer relayed the call for a plain client: it runs here or fails, it never moves again. */
  forwarded?: boolean;
}

/** This node, measured at the moment of the call. */
export interface SelfState {
  nodeId: string;
  /** `ONLINE`, or `DRAINING` / `UNHEALTHY`: then every call that can move is moved. */
  status?: 'ONLINE' | 'DRAINING' | 'UNHEALTHY';
  /** Calls running and queued over capacity, uncapped (a meter's load if higher). */
  load: number;
  running: number;
  queued: number;
  capacity: number;
  maxQueue: number;
  hosts(service: string): boolean;
  /** True when this node owns the live session `token`. */
  hasSession?(token: string): boolean;
}

/** The tunable rules of the decision. */
export interface PolicyConfig {
  threshold: number;
  margin: number;
  maxHops: number;
  /** A report older than this many of the peer's periods makes the peer unknown. */
  staleAfterPeriods: number;
  /** Calls of clients that do not follow redirects may be moved (the broker forwards them). */
  forwardLegacy?: boolean;
  /** Session and dedicated-home rules. */
  rules?: CompiledRules;
}

/**
 * Why a call was refused (metrics count by it): this node and no peer could take it, a
 * session's owner is full, the session is unknown or its owner off-line, the session is
 * another node's and the client cannot follow, no node hosts the service, the token is
 * malformed, the node holds its limit of sessions, or the decision failed.
 */
export type RejectReason =
  | 'overloaded'
  | 'session-overloaded'
  | 'session-unknown'
  | 'session-owner-offline'
  | 'session-elsewhere'
  | 'not-hosted'
  | 'malformed-token'
  | 'max-sessions'
  | 'internal';

/**
 * The outcome of the decision: a tagged union, as grpc-js's PickResult. A redirect carries
 * what its details text needs (`redirectDetail`), formatted only when it is sent.
 */
export type Decision =
  | { readonly kind: 'local' }
  | {
      readonly kind: 'redirect';
      readonly peer: PeerEntry;
      readonly reason: RedirectReason;
      /** A `service` redirect to the method's dedicated home (this node hosts the service too). */
      readonly home: boolean;
      /** This node's load and the peer's (with accounting) when the rule compared them, without the call (`load` redirects; 0 otherwise). */
      readonly selfLoad: number;
      readonly peerLoad: number;
    }
  | { readonly kind: 'reject'; readonly code: status; readonly reason: RejectReason; readonly message: string };

/** Picks one peer among eligible candidates (all online, fresh, hosting the service). */
export interface PeerChoice {
  readonly name: string;
  /** The load the rule compares: reported, or reported plus local accounting. */
  loadOf(peer: PeerEntry): number;
  /** Never called with an empty list. */
  select(candidates: readonly PeerEntry[]): PeerEntry;
}
