import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import type { Readable } from 'node:stream';

/** Lines of output kept per child, shown when it fails. */
export const OUTPUT_LINES = 60;

/** Time a child gets to exit after SIGTERM before it is sent SIGKILL. */
export const DEFAULT_KILL_TIMEOUT_MS = 4_000;

/** A child process the demo started; its output is kept, never printed unless it fails. */
export interface DemoChild {
  /** Short name used in messages (`nats-server`, `broker n1`). */
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** True until the process has exited. */
  readonly running: boolean;
  /** The last OUTPUT_LINES lines of stdout and stderr. */
  output(): string;
  /** Resolves with the first line matching `pattern`; rejects if the child exits or `timeoutMs` passes first. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Resolves once the process has exited. */
  readonly exited: Promise<void>;
}

// Every child still running, by PID: what stopAll() and the exit hook kill.
const children = new Map<number, DemoChild>();

/** PIDs of every child started so far (running or not), in start order. */
export const startedPids: number[] = [];

/** Starts `cmd` with stdout and stderr captured; throws if it cannot be spawned. */
export async function startChild(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<DemoChild> {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  await new Promise<void>((resolve, reject) => {
    proc.once('spawn', resolve);
    proc.once('error', (err) => reject(new Error(`cannot start ${name} ('${cmd}'): ${err.message}`)));
  });
  // A later 'error' (a failed kill) must not crash the demo; the exit is what matters.
  proc.on('error', () => {});
  const pid = proc.pid!;
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  const onLine = (line: string) => {
    lines.push(line);
    if (lines.length > OUTPUT_LINES) lines.shift();
    for (const l of listeners) l(line);
  };
  capture(proc.stdout, onLine);
  capture(proc.stderr, onLine);
  let running = true;
  const exited = new Promise<void>((resolve) =>
    proc.once('exit', () => {
      running = false;
      children.delete(pid);
      resolve();
    }),
  );
  const child: DemoChild = {
    name,
    pid,
    process: proc,
    get running() {
      return running;
    },
    output: () => lines.join('\n'),
    exited,
    waitForLine: (pattern, timeoutMs) =>
      new Promise((resolve, reject) => {
        const done = (err: Error | null, m?: RegExpMatchArray) => {
          clearTimeout(timer);
          listeners.delete(listener);
          if (err) reject(err);
          else resolve(m!);
        };
        const listener = (line: string) => {
          const m = pattern.exec(line);
          if (m) done(null, m);
        };
        const timer = setTimeout(() => done(new Error(`${name} did not print ${pattern} within ${timeoutMs} ms`)), timeoutMs);
        void exited.then(() => done(new Error(`${name} exited (code ${proc.exitCode ?? proc.signalCode}) before printing ${pattern}`)));
        for (const line of lines) {
          const m = pattern.exec(line);
          if (m) return done(null, m);
        }
        listeners.add(listener);
      }),
  };
  children.set(pid, child);
  startedPids.push(pid);
  return child;
}

function capture(stream: Readable | null, onLine: (line: string) => void): void {
  if (!stream) return;
  readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    // ESRCH: it has already exited, which is what we wanted.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** SIGTERM to one child by PID, SIGKILL after `timeoutMs`; resolves once it has exited. */
export async function stopChild(child: DemoChild, timeoutMs = DEFAULT_KILL_TIMEOUT_MS): Promise<void> {
  if (!child.running) return;
  signal(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.running) signal(child.pid, 'SIGKILL');
  }, timeoutMs);
  await child.exited;
  clearTimeout(timer);
}

/** Stops every child still running, `first` ones before the rest (brokers before their NATS server). */
export async function stopAll(first: (c: DemoChild) => boolean = () => false): Promise<void> {
  const all = [...children.values()];
  await Promise.all(all.filter(first).map((c) => stopChild(c)));
  await Promise.all(all.filter((c) => !first(c)).map((c) => stopChild(c)));
}

/** PIDs of the children that are still running. */
export function runningPids(): number[] {
  return [...children.keys()];
}

// Last resort: whatever path the demo leaves by, no child outlives it.
process.once('exit', () => {
  for (const pid of children.keys()) signal(pid, 'SIGKILL');
});
