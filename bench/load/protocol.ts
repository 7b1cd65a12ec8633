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
  | { kind: 'moleculer'; servers: string[] }
  /**
   * A plain grpc-js client written from the wire contract alone (`follower.ts`): every call
   * enters at `endpoints[0]`, sends `peerbroker-follow: 1`, and follows each redirect itself.
   */
  | { kind: 'follower'; endpoints: string[] }
  /**
   * Join-shortest-queue: plain grpc-js clients to every endpoint (never redirected); each call
   * goes to the node with the fewest calls in flight, counted by every thread of the generator.
   */
  | { kind: 'jsq'; endpoints: string[] }
  /**
   * HTTP/JSON POSTs of `Securities.GetQuote` to `url` (`httpCaller` in callers.ts): with Node's
   * `fetch`, which follows 307s, or with `node:http` on a keep-alive agent (lighter; follows nothing).
   */
  | { kind: 'http'; url: string; client: 'fetch' | 'agent' };

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
   * skipped. Calls due are started every `tickMs` (default 1), so a late timer catches up;
   * latency counts from each call's scheduled send time (call k at k / `ratePerSec`).
   */
  | { kind: 'open'; ratePerSec: number; maxInFlight: number; tickMs?: number }
  /**
   * Poisson arrivals at `ratePerSec` from a RNG seeded with `seed` (the same seed gives the
   * same schedule). Latency counts from each call's scheduled time, and the window holds the
   * calls scheduled in it, each followed to its end: a system that falls behind cannot hide it.
   */
  | { kind: 'poisson'; ratePerSec: number; seed: number; maxInFlight: number };

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
  /**
   * Runs the brief in this many worker threads of one process, each with its share of the
   * rate (Poisson: its own seed); jsq counts are shared between them. Default: no threads.
   */
  threads?: number;
}

/** Parent → generator. */
export type ToGenerator = { type: 'go'; atEpochMs: number };

/** Generator → parent. */
export type FromGenerator =
  | { type: 'ready' }
  /** One result, or one per thread (`threads`; the process's CPU is on the first). */
  | { type: 'result'; result: LoadResult | LoadResult[] }
  | { type: 'failed'; message: string };

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
  /** Status details of failed calls, the first few of each error name. */
  errorDetails?: Record<string, string[]>;
  /** Stub and follower: redirects followed and refused; stub: channels opened. */
  redirectsFollowed?: number;
  redirectsRefused?: number;
  channels?: number;
}
