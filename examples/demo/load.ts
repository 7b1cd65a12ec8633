import * as grpc from '@grpc/grpc-js';
import type { BankingClient } from '../../src/generated/bank/Banking';

/** How the load generator offers calls. */
export interface LoadOptions {
  /** Calls started per second, whatever the answers (open loop, like independent users). */
  ratePerSec: number;
  /** How long calls are started, ms. */
  durationMs: number;
  /** Every n-th call is a StreamStatements stream (the rest alternate GetBalance and Deposit). */
  streamEvery: number;
  /** Messages per StreamStatements stream. */
  streamMessages: number;
  /** Deadline of each call, ms. */
  deadlineMs: number;
  /** Calls in flight above which new ones are skipped, not queued: bounds memory if the cluster stalls. */
  maxInFlight: number;
}

/** What one phase of load produced. */
export interface PhaseResult {
  /** Calls started. */
  sent: number;
  /** Calls that ended OK. */
  ok: number;
  /** Calls not started because `maxInFlight` were in flight. */
  skipped: number;
  /** Failed calls by gRPC status name. */
  errors: Map<string, number>;
  /** The first status details seen for each failing status name. */
  errorSamples: Map<string, string>;
  /** Successful calls by the node that served them (`servedBy`). */
  servedBy: Map<string, number>;
  /** Latency of successful unary calls, ms. */
  unaryMs: number[];
  /** Latency of successful streams, first request to last message, ms. */
  streamMs: number[];
  /** Wall time from the first call started to the last call ended, ms. */
  elapsedMs: number;
}

/** Counters the live view reads while a phase runs. */
export interface LoadProgress {
  sent: number;
  ok: number;
  failed: number;
  inFlight: number;
  startedAt: number;
}

const TICK_MS = 5;
const ACCOUNTS = 50;

/**
 * Offers `ratePerSec` calls for `durationMs` through `client`, then waits for every
 * call to end (each has a deadline, so this is bounded). `progress` is updated live.
 * Rejects at once when `signal` aborts (the demo is stopping and closes the client).
 */
export async function runLoad(client: BankingClient, o: LoadOptions, progress: LoadProgress, signal?: AbortSignal): Promise<PhaseResult> {
  signal?.throwIfAborted();
  const r: PhaseResult = { sent: 0, ok: 0, skipped: 0, errors: new Map(), errorSamples: new Map(), servedBy: new Map(), unaryMs: [], streamMs: [], elapsedMs: 0 };
  const total = Math.round((o.ratePerSec * o.durationMs) / 1000);
  const t0 = performance.now();
  progress.startedAt = t0;
  let offered = 0;
  let lastEnd = t0;
  let allStarted = false;
  let resolveDrained!: () => void;
  const drained = new Promise<void>((resolve) => (resolveDrained = resolve));

  const end = (ok: boolean, kind: 'unary' | 'stream', began: number, servedBy: string | undefined, code?: number, details?: string) => {
    const now = performance.now();
    lastEnd = now;
    progress.inFlight--;
    if (ok) {
      r.ok++;
      progress.ok++;
      (kind === 'unary' ? r.unaryMs : r.streamMs).push(now - began);
      const node = servedBy || '?';
      r.servedBy.set(node, (r.servedBy.get(node) ?? 0) + 1);
    } else {
      progress.failed++;
      const name = grpc.status[code ?? grpc.status.UNKNOWN] ?? `code ${code}`;
      r.errors.set(name, (r.errors.get(name) ?? 0) + 1);
      if (!r.errorSamples.has(name)) r.errorSamples.set(name, details ?? '');
    }
    if (allStarted && progress.inFlight === 0) resolveDrained();
  };

  const start = (i: number) => {
    const accountId = `acct-${i % ACCOUNTS}`;
    const deadline = Date.now() + o.deadlineMs;
    const began = performance.now();
    progress.inFlight++;
    progress.sent++;
    r.sent++;
    if (i % o.streamEvery === o.streamEvery - 1) {
      let servedBy: string | undefined;
      const call = client.StreamStatements({ accountId, count: o.streamMessages }, { deadline });
      call.on('data', (m: { servedBy?: string }) => (servedBy ??= m.servedBy));
      call.on('error', () => {}); // the outcome arrives as 'status'
      call.on('status', (st: grpc.StatusObject) => end(st.code === grpc.status.OK, 'stream', began, servedBy, st.code, st.details));
    } else if (i % 2 === 0) {
      client.GetBalance({ accountId }, { deadline }, (err, res) => end(!err, 'unary', began, res?.servedBy, err?.code, err?.details));
    } else {
      client.Deposit({ accountId, amountCents: 100 }, { deadline }, (err, res) => end(!err, 'unary', began, res?.servedBy, err?.code, err?.details));
    }
  };

  const aborted = new Promise<never>((_, reject) =>
    signal?.addEventListener('abort', () => reject(new Error('load stopped: the demo is stopping')), { once: true }),
  );
  aborted.catch(() => {}); // observed below; never an unhandled rejection
  // Calls due so far are started on each tick, so a late timer catches up instead of lowering the rate.
  const started = new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (signal?.aborted) return clearInterval(timer);
      const elapsed = performance.now() - t0;
      const due = Math.min(total, Math.floor((o.ratePerSec * elapsed) / 1000));
      while (offered < due) {
        if (progress.inFlight >= o.maxInFlight) r.skipped++;
        else start(offered);
        offered++;
      }
      if (offered >= total || elapsed >= o.durationMs) {
        clearInterval(timer);
        resolve();
      }
    }, TICK_MS);
  });
  await Promise.race([started, aborted]);
  allStarted = true;
  if (progress.inFlight > 0) await Promise.race([drained, aborted]);
  r.elapsedMs = lastEnd - t0;
  return r;
}

/** The p-th percentile (nearest rank) of `values`, ms; NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
