/**
 * What the soak runner (`run.ts`) and its mix generators (`generator.ts`) say to each other
 * over the fork IPC channel.
 */

/** One target of the soak: a lone node, or a cluster whose calls enter at `endpoints[0]`. */
export interface SoakTarget {
  /** `solo` or `cluster`: names the counts in the summary. */
  name: string;
  /** Every node's `host:port`, in node order. */
  endpoints: string[];
  /** Each node's `--capacity`: how many calls an episode holds to fill its slots. */
  capacity: number;
}

/** Calls in flight per kind (0 leaves the kind out), and the pace of the rarer kinds. */
export interface SoakMix {
  plain: number;
  follow: number;
  streamServer: number;
  streamClient: number;
  streamBidi: number;
  cancel: number;
  /** Pause between two calls of a cancel lane, ms. */
  cancelEveryMs: number;
  sessionCommit: number;
  sessionAbandon: number;
  /** Pause between two queue episodes (hold every slot, let calls expire in the queue), ms. */
  episodeEveryMs: number;
  /** Calls sent into a held node's queue per episode; half expire there, half are cancelled there. */
  episodeQueued: number;
}

/** A generator's whole brief, passed as JSON in argv[2]. */
export interface GeneratorBrief {
  target: SoakTarget;
  mix: SoakMix;
  /** The load stops by itself this long after `go`, whatever the runner says, ms. */
  maxMs: number;
  /** Hard bound on calls started. */
  maxCalls: number;
  /** Deadline of calls meant to finish (not of those meant to expire), ms. */
  deadlineMs: number;
  /** After the load stops, how long calls still in flight get to end, ms. */
  drainMs: number;
}

/** Calls by kind, then by outcome (`OK` or a gRPC status name). */
export type Counts = Record<string, Record<string, number>>;

/** Runner → generator. */
export type ToSoakGenerator = { type: 'go' } | { type: 'stop' };

/** Generator → runner. */
export type FromSoakGenerator =
  | { type: 'ready' }
  /** Calls ended so far (sent about every second). */
  | { type: 'progress'; calls: number }
  /** Sent once, after the drain: `unfinished` calls had not ended when it ran out. */
  | { type: 'result'; counts: Counts; details: Record<string, string[]>; unfinished: number; stoppedBy: string }
  | { type: 'failed'; message: string };
