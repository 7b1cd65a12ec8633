/**
 * The load loop of a generator: offers calls to a `Caller` as the brief's mode says, from a
 * common start time, and measures them. Used by the generator process and its worker threads.
 */
import { Histogram } from '../lib/histogram';
import { seededRandom } from '../lib/random';
import type { Caller } from './callers';
import type { LoadConfig, LoadResult } from './protocol';

/** Time allowed after the window for calls in flight to end (on top of their deadline). */
const DRAIN_GRACE_MS = 1_000;
/** Status details kept per error name. */
const KEPT_DETAILS = 3;

/** Makes the calls of `cfg` through `caller`, starting at `atEpochMs`; resolves with what it measured. */
export function drive(caller: Caller, cfg: LoadConfig, atEpochMs: number): Promise<LoadResult> {
  const t0 = performance.now() + (atEpochMs - Date.now());
  const windowStart = t0 + cfg.warmupMs;
  const windowEnd = windowStart + cfg.durationMs;
  const hist = new Histogram();
  const bucketHist: Histogram[] = [];
  const timeline: Record<string, number[]> = {};
  const failedTimeline: number[] = [];
  const servedBy: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const errorDetails: Record<string, string[]> = {};
  let started = 0;
  let skipped = 0;
  let ok = 0;
  let inflight = 0;
  let inWindow = false;
  let stopped = false;
  let cpuAt0 = process.cpuUsage();
  let cpuMs = 0;
  let wStart = 0;
  let windowMs = 0;
  const noRedirects = { followed: 0, refused: 0 };
  let redirects0 = noRedirects;
  let redirects = noRedirects;
  const redirectsNow = () => caller.redirects?.() ?? noRedirects;
  /** Open loops (`open`, `poisson`) count the calls scheduled in the window, each followed to its end. */
  const scheduledWindow = cfg.mode.kind !== 'closed';

  const bump = (arr: number[], i: number) => {
    while (arr.length <= i) arr.push(0);
    arr[i]++;
  };

  return new Promise<LoadResult>((resolve) => {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      // Open loops: the calls scheduled in the window end after it; their redirects count too.
      if (scheduledWindow) redirects = redirectsNow();
      resolve({
        id: cfg.id,
        started,
        skipped,
        okInWindow: ok,
        errorsInWindow: errors,
        errorDetails,
        latency: hist.toData(),
        servedBy,
        timeline,
        failedTimeline,
        bucketLatency: Array.from(bucketHist, (h) => (h ? h.toData() : null)),
        cpuMs,
        windowMs,
        redirectsFollowed: redirects.followed - redirects0.followed,
        redirectsRefused: redirects.refused - redirects0.refused,
        channels: caller.stub?.peerbroker.pool.endpoints().length,
      });
    };

    /**
     * Starts one call whose latency counts from `began`. `counted` says whether it belongs to
     * the window (open loops: by its scheduled time); undefined (closed loops) counts it by
     * when it ends.
     */
    const startOne = (began: number, counted: boolean | undefined, closedLoop: boolean) => {
      started++;
      inflight++;
      caller.call((err, node, details) => {
        const now = performance.now();
        inflight--;
        const b = Math.max(0, Math.floor((now - t0) / cfg.bucketMs));
        const inIt = counted ?? inWindow;
        if (err) {
          bump(failedTimeline, b);
          if (inIt) {
            errors[err] = (errors[err] ?? 0) + 1;
            const kept = (errorDetails[err] ??= []);
            if (details && kept.length < KEPT_DETAILS && !kept.includes(details)) kept.push(details);
          }
        } else {
          bump((timeline[node] ??= []), b);
          (bucketHist[b] ??= new Histogram()).recordMs(now - began);
          if (inIt) {
            ok++;
            hist.recordMs(now - began);
            servedBy[node] = (servedBy[node] ?? 0) + 1;
          }
        }
        if (closedLoop && !stopped && started < cfg.maxCalls) startOne(performance.now(), undefined, true);
        else if (stopped && inflight === 0) finish();
      });
    };

    const startLoop = () => {
      const mode = cfg.mode;
      if (mode.kind === 'closed') {
        for (let i = 0; i < mode.concurrency; i++) startOne(performance.now(), undefined, true);
      } else if (mode.kind === 'open') {
        let offered = 0;
        const ticker = setInterval(() => {
          if (stopped) return clearInterval(ticker);
          const due = Math.min(cfg.maxCalls, Math.floor((mode.ratePerSec * (performance.now() - t0)) / 1000));
          while (offered < due) {
            offered++;
            // Call number `offered` is due at t0 + offered / rate: its latency counts from then,
            // not from this (possibly late) tick, so a stalled generator or system cannot hide it.
            const scheduled = t0 + (offered * 1000) / mode.ratePerSec;
            // It belongs to the window by when it was due, not by when it ends: the slowest
            // calls at the window's end count too.
            const counted = scheduled >= windowStart && scheduled < windowEnd;
            if (inflight >= mode.maxInFlight) {
              if (counted) skipped++;
            } else startOne(scheduled, counted, false);
          }
        }, mode.tickMs ?? 1);
      } else {
        const random = seededRandom(mode.seed);
        const gapMs = () => (-Math.log(1 - random()) * 1000) / mode.ratePerSec;
        let next = t0 + gapMs();
        let offered = 0;
        const ticker = setInterval(() => {
          const now = performance.now();
          while (next <= now && next < windowEnd && offered < cfg.maxCalls) {
            offered++;
            const counted = next >= windowStart;
            if (inflight >= mode.maxInFlight) {
              if (counted) skipped++;
            } else startOne(next, counted, false);
            next += gapMs();
          }
          if (next >= windowEnd || offered >= cfg.maxCalls) clearInterval(ticker);
        }, 1);
      }
    };

    setTimeout(startLoop, Math.max(0, t0 - performance.now()));
    setTimeout(
      () => {
        inWindow = true;
        wStart = performance.now();
        cpuAt0 = process.cpuUsage();
        redirects0 = redirectsNow();
      },
      Math.max(0, windowStart - performance.now()),
    );
    setTimeout(
      () => {
        inWindow = false;
        stopped = true;
        // Open loops: the window is a span of the schedule, whatever the timers' lateness.
        windowMs = scheduledWindow ? cfg.durationMs : performance.now() - wStart;
        const c = process.cpuUsage(cpuAt0);
        cpuMs = (c.user + c.system) / 1000;
        redirects = redirectsNow();
        if (inflight === 0) finish();
        setTimeout(finish, cfg.deadlineMs + DRAIN_GRACE_MS).unref();
      },
      Math.max(0, windowEnd - performance.now()),
    );
  });
}
