import * as fs from 'node:fs';

/** From this share of a limit the node says it is UNHEALTHY. */
export const PRESSURE_HIGH = 0.9;
/** ... and healthy again once every resource is below this share. */
export const PRESSURE_LOW = 0.8;

/** A resource the node can run out of: used now, and its limit (undefined when unknown). */
export interface Resource {
  name: string;
  /** The option that sets the limit, for the reason line. */
  option: string;
  used(): number;
  limit(): number | undefined;
}

/**
 * Turns resources near their limits into an unhealthy verdict, so that no peer sends work
 * to a node that cannot take it (issue 11: a node out of file descriptors kept reporting
 * ONLINE at load 0). From `PRESSURE_HIGH` of any limit the node is under pressure, and it
 * stays so until every resource is below `PRESSURE_LOW`, so it does not flap at the edge.
 */
export class ResourcePressure {
  private under = false;

  constructor(private readonly resources: readonly Resource[]) {}

  /** '' when the node can take work, else why not (`connections 48 of 50 (max-connections)`). */
  check(): string {
    let high = '';
    let low = '';
    for (const r of this.resources) {
      const limit = r.limit();
      if (limit === undefined || limit <= 0) continue;
      const used = r.used();
      const reason = `${r.name} ${used} of ${limit} (${r.option})`;
      if (used >= PRESSURE_HIGH * limit && high === '') high = reason;
      if (used >= PRESSURE_LOW * limit && low === '') low = reason;
    }
    if (high !== '') this.under = true;
    else if (low === '') this.under = false;
    return this.under ? high || low : '';
  }
}

/** The soft limit on open files of this process (`/proc/self/limits`), or undefined where unknown (not Linux, unlimited). */
export function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The process's open file descriptors, counted in `/proc/self/fd` off the main thread
 * (the listing runs in libuv's pool) at most once at a time; 0 where there is no /proc.
 */
export class OpenFiles implements Resource {
  readonly name = 'open files';
  readonly option = 'ulimit -n';
  private count = 0;
  private reading = false;
  private readonly max = openFileLimit();

  used(): number {
    return this.count;
  }

  limit(): number | undefined {
    return this.max;
  }

  /** Counts again; the count is there for the next check. */
  refresh(): void {
    if (this.reading || this.max === undefined) return;
    this.reading = true;
    fs.promises.readdir('/proc/self/fd').then(
      (names) => {
        this.count = names.length;
        this.reading = false;
      },
      () => {
        this.reading = false;
      },
    );
  }
}
