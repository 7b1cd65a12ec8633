import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';

/** A source of load besides in-flight calls, sampled once per period (never per call). */
export interface LoadMeter {
  readonly name: string;
  /** Load now, 0..1. */
  sample(): number;
  /** Frees timers or histograms. */
  close?(): void;
}

/** Event-loop utilisation since the last sample: busy CPU shows as load. */
export function eventLoopMeter(): LoadMeter {
  let last = performance.eventLoopUtilization();
  return {
    name: 'event-loop',
    sample() {
      const now = performance.eventLoopUtilization();
      const u = performance.eventLoopUtilization(now, last).utilization;
      last = now;
      return u;
    },
  };
}

const meters = new Map<string, () => LoadMeter>([['event-loop', eventLoopMeter]]);

/** Names of the meters `meterByName` knows (`in-flight` is always on and not listed). */
export function loadMeterNames(): string[] {
  return [...meters.keys()];
}

/** The meter registered under `name`; an unknown name lists the known ones. */
export function loadMeterByName(name: string): LoadMeter {
  const make = meters.get(name);
  if (!make) throw new Error(`unknown load meter '${name}' (known: ${loadMeterNames().join(', ')})`);
  return make();
}

/** Registers a meter under its name. */
export function registerLoadMeter(name: string, make: () => LoadMeter): void {
  meters.set(name, make);
}

/** Main event-loop delay, as a p99 over the window since the last `take()`, in ms. */
export class LoopDelay {
  private readonly h: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  constructor() {
    this.h.enable();
  }
  /** p99 delay since the last call, ms; resets the window. */
  take(): number {
    const v = this.h.count > 0 ? this.h.percentile(99) / 1e6 : 0;
    this.h.reset();
    return v;
  }
  close(): void {
    this.h.disable();
  }
}
