import type { HistogramData } from '../lib/histogram';

/** Where a load generator sends its calls. */
export type Target =
  /** A plain grpc-js client on one channel to `endpoints[0]` (never redirected). */
  | { kind: 'grpc'; endpoints: string[] }
  /** Plain grpc-js clients to every endpoint, round-robin per call (the ideal balancer). */
  | { kind: 'grpc-rr'; endpoints: string[] }
  /** The peerbroker stub (`createClient`): calls enter at `endpoints[0]` and follow redirects. */
  | { kind: 'stub'; endpoints: string[] }
  /**
   * A plain grpc-js client that says it follows (`peerbroker-follow: 1`) but does not: a call
   * counts as done when `endpoints[0]` answers with a redirect. The redirect answer alone.
   */
  | { kind: 'bounce'; endpoints: string[] }
  /** NATS request-reply to a queue group on `subject`. */
  | { kind: 'nats'; servers: string[]; subject: string }
  /** Moleculer over the NATS transporter, action `echo.echo`. */
  | { kind: 'moleculer'; servers: string[] };

/** What each call carries. */
export type CallKind =
  /** `bank.Securities/GetQuote`: a small message; the answer names the node (`served_by`). */
  | { kind: 'quote' }
  /** `bench.Echo/Echo` with `bytes` bytes each way. */
  | { kind: 'echo'; bytes: number };

/** How calls are offered. */
export type Mode =
  /** `concurrency` calls always in flight: the next starts when one ends. */
  | { kind: 'closed'; concurrency: number }
  /**
   * `ratePerSec` calls started per second whatever the answers; above `maxInFlight` a call is
   * skipped. Calls due are started every `tickMs` (default 1), so a late timer catches up.
   */
  | { kind: 'open'; ratePerSec: number; maxInFlight: number; tickMs?: number };

/** A load generator's whole brief, passed as JSON in argv[2]. */
export interface LoadConfig {
  id: string;
  target: Target;
  call: CallKind;
  mode: Mode;
  /** Calls before the window opens (not measured), ms. */
  warmupMs: number;
  /** The measured window, ms; no call starts after it. */
  durationMs: number;
  /** Hard bound on calls started, whatever the time. */
  maxCalls: number;
  /** Deadline of each call, ms. */
  deadlineMs: number;
  /** Width of a timeline bucket, ms. */
  bucketMs: number;
}

/** Parent → generator. */
export type ToGenerator = { type: 'go'; atEpochMs: number };

/** Generator → parent. */
export type FromGenerator = { type: 'ready' } | { type: 'result'; result: LoadResult } | { type: 'failed'; message: string };

/** What one generator measured. */
export interface LoadResult {
  id: string;
  /** Calls started, in total and in the window. */
  started: number;
  /** Calls skipped because `maxInFlight` were in flight (open loop). */
  skipped: number;
  /** Calls that ended OK with their end inside the window. */
  okInWindow: number;
  /** Failed calls ending inside the window, by error name. */
  errorsInWindow: Record<string, number>;
  /** Latency of OK calls ending inside the window. */
  latency: HistogramData;
  /** OK calls ending inside the window, by the node that ran them. */
  servedBy: Record<string, number>;
  /** Per node: OK calls ending in each bucket since `go` (warm-up included). */
  timeline: Record<string, number[]>;
  /** Failed calls ending in each bucket since `go`. */
  failedTimeline: number[];
  /** Latency of OK calls per bucket since `go` (null where none). */
  bucketLatency: Array<HistogramData | null>;
  /** The generator's own CPU in the window (user + system), ms. */
  cpuMs: number;
  /** Wall length of the window, ms. */
  windowMs: number;
  /** Stub only: redirects followed and refused, channels opened. */
  redirectsFollowed?: number;
  redirectsRefused?: number;
  channels?: number;
}
