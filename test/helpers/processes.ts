import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import readline from 'node:readline';
import type { Readable } from 'node:stream';

/** How many output lines are kept per child for `outputOf()`. */
export const OUTPUT_LINES = 200;

/** Default time `killTracked()` waits before escalating to SIGKILL. */
export const DEFAULT_KILL_TIMEOUT_MS = 5_000;

/** Default time `waitForLine()` waits for a matching line. */
export const DEFAULT_WAIT_FOR_LINE_MS = 10_000;

/** How a tracked child ended. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Tracked {
  /** Last OUTPUT_LINES lines of stdout and stderr, interleaved in arrival order. */
  lines: string[];
  /** Called with every new line (waitForLine listeners). */
  lineListeners: Set<(line: string) => void>;
  /** Label used in messages: `cmd args`. */
  label: string;
  /** Resolves when the process has exited (or failed to spawn). */
  exited: Promise<ExitInfo>;
  exit: ExitInfo | null;
  /** Resolves once stdout and stderr have been fully read after exit. */
  closed: Promise<void>;
  spawnError: Error | null;
  /** Spawned detached: it leads a process group of its own, and signals go to the whole group. */
  group: boolean;
}

const running = new Map<number, ChildProcess>();
/**
 * Process groups of detached children, by their leader's PID, not yet killed whole: the
 * leader's exit does not end the group (a browser's renderers outlive it), so a group is
 * killed when its leader exits or is killed, and when the test process ends.
 */
const groups = new Set<number>();
const tracked = new WeakMap<ChildProcess, Tracked>();

function stateOf(child: ChildProcess): Tracked {
  const state = tracked.get(child);
  if (!state) throw new Error(`process ${child.pid ?? '(no pid)'} was not started with spawnTracked()`);
  return state;
}

function hasExited(child: ChildProcess, state: Tracked): boolean {
  return state.exit !== null || child.exitCode !== null || child.signalCode !== null;
}

function pushLine(state: Tracked, line: string): void {
  state.lines.push(line);
  if (state.lines.length > OUTPUT_LINES) state.lines.splice(0, state.lines.length - OUTPUT_LINES);
  for (const listener of state.lineListeners) listener(line);
}

function capture(stream: Readable | null, state: Tracked): Promise<void> {
  if (!stream) return Promise.resolve();
  const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
  rl.on('line', (line) => pushLine(state, line));
  return new Promise((resolve) => rl.once('close', () => resolve()));
}

/**
 * Spawns a child process and records it, so `killAllTracked()` (also run on
 * process exit) can kill it if a test fails. stdout and stderr are piped and
 * captured unless `opts.stdio` says otherwise. With `opts.detached` the child
 * leads a process group of its own, and every signal goes to the whole group
 * (for programs that start helpers of their own, such as Chromium).
 */
export function spawnTracked(cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  const group = opts.detached === true && child.pid !== undefined;
  let resolveExited!: (info: ExitInfo) => void;
  const state: Tracked = {
    lines: [],
    lineListeners: new Set(),
    label: [cmd, ...args].join(' '),
    exited: new Promise((resolve) => (resolveExited = resolve)),
    exit: null,
    closed: Promise.resolve(),
    spawnError: null,
    group,
  };
  tracked.set(child, state);
  state.closed = Promise.all([capture(child.stdout, state), capture(child.stderr, state)]).then(() => undefined);

  // Without an 'error' listener a failed spawn (ENOENT) would crash the test worker.
  child.on('error', (err) => {
    state.spawnError ??= err;
    if (child.pid === undefined) {
      state.exit = { code: null, signal: null };
      resolveExited(state.exit);
    }
  });
  child.once('exit', (code, signal) => {
    state.exit = { code, signal };
    if (child.pid !== undefined) running.delete(child.pid);
    // What the leader left in its group goes now, while the group id is surely still ours.
    if (group && child.pid !== undefined) killGroup(child.pid);
    resolveExited(state.exit);
  });
  if (child.pid !== undefined) running.set(child.pid, child);
  if (group) groups.add(child.pid!);
  return child;
}

/** Last ~200 lines of a tracked child's stdout and stderr, for failure messages. */
export function outputOf(child: ChildProcess): string {
  const state = stateOf(child);
  const text = state.lines.join('\n');
  if (!state.spawnError) return text;
  return `${text}${text ? '\n' : ''}[spawn error] ${state.spawnError.message}`;
}

/** Resolves with how a tracked child ended, once it has exited. */
export function exitOf(child: ChildProcess): Promise<ExitInfo> {
  return stateOf(child).exited;
}

/**
 * Resolves once a tracked child's stdout and stderr have been read to their end: after its
 * exit, then, `outputOf()` holds its last line too.
 */
export function closedOf(child: ChildProcess): Promise<void> {
  return stateOf(child).closed;
}

function sendSignal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    // ESRCH: it already exited, which is what we wanted.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Sends `signal` to a tracked child, or to its whole process group when it leads one. */
function signalChild(pid: number, state: Tracked, signal: NodeJS.Signals): void {
  sendSignal(state.group ? -pid : pid, signal);
}

/** SIGKILLs what is left of the process group led by `pid` (its leader has exited or is being killed). */
function killGroup(pid: number): void {
  if (!groups.delete(pid)) return;
  sendSignal(-pid, 'SIGKILL');
}

/**
 * Sends `signal` to a tracked child by PID and waits for it to exit,
 * escalating to SIGKILL after `timeoutMs`. Resolves at once if it already exited.
 */
export async function killTracked(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  timeoutMs = DEFAULT_KILL_TIMEOUT_MS,
): Promise<ExitInfo> {
  const state = stateOf(child);
  if (child.pid === undefined) return state.exited;
  const pid = child.pid;
  if (hasExited(child, state)) {
    if (state.group) killGroup(pid);
    return state.exited;
  }
  signalChild(pid, state, signal);
  let timer: NodeJS.Timeout | undefined;
  const escalated =
    signal === 'SIGKILL'
      ? state.exited.then(() => undefined)
      : new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            if (!hasExited(child, state)) signalChild(pid, state, 'SIGKILL');
            resolve();
          }, timeoutMs);
        });
  try {
    await Promise.race([state.exited, escalated]);
    return await state.exited;
  } finally {
    clearTimeout(timer);
    // The leader is gone; helpers it started in its group may not be.
    if (state.group) killGroup(pid);
  }
}

/**
 * Sends SIGKILL to every tracked child still running. The signals go out
 * synchronously (so this is safe in a process 'exit' handler); the returned
 * promise resolves when they have all exited.
 */
export function killAllTracked(): Promise<void> {
  const children = [...running.values()];
  for (const child of children) {
    if (child.pid !== undefined) signalChild(child.pid, stateOf(child), 'SIGKILL');
  }
  for (const pid of [...groups]) killGroup(pid);
  return Promise.all(children.map((child) => stateOf(child).exited)).then(() => undefined);
}

/** PIDs of tracked children that have not exited yet. */
export function trackedPids(): number[] {
  return [...running.keys()];
}

const cleanups: Array<() => void> = [];

/**
 * Registers a synchronous cleanup (such as removing a temporary directory)
 * that runs after the tracked children are killed when the test process ends.
 */
export function onProcessCleanup(fn: () => void): void {
  cleanups.push(fn);
}

let cleanedUp = false;
function cleanUpNow(): void {
  if (cleanedUp) return;
  cleanedUp = true;
  void killAllTracked();
  for (const fn of cleanups) {
    try {
      fn();
    } catch {
      // Best effort: the process is going away.
    }
  }
}

process.on('exit', cleanUpNow);
// Vitest stops a forks-pool worker with SIGTERM, whose default action skips
// 'exit' handlers; children would outlive it. Clean up, then die of the same
// signal unless someone else handles it.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(signal, () => {
    cleanUpNow();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

/** Options for `waitForLine()`. */
export interface WaitForLineOptions {
  /**
   * Only match lines emitted after the call. Default false: lines already
   * captured count too, because several lines can arrive in one chunk and be
   * emitted before the caller gets to wait for the second.
   */
  onlyNew?: boolean;
}

/**
 * Resolves with the first line of a tracked child's stdout or stderr that
 * matches `regex`. Rejects, quoting the captured output, on timeout or if the
 * child exits first.
 */
export function waitForLine(
  child: ChildProcess,
  regex: RegExp,
  timeoutMs = DEFAULT_WAIT_FOR_LINE_MS,
  opts: WaitForLineOptions = {},
): Promise<string> {
  const state = stateOf(child);
  // A global or sticky regex keeps lastIndex between test() calls; match afresh each line.
  const pattern = new RegExp(regex.source, regex.flags.replace(/[gy]/g, ''));
  if (!opts.onlyNew) {
    const seen = state.lines.find((line) => pattern.test(line));
    if (seen !== undefined) return Promise.resolve(seen);
  }
  return new Promise<string>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | null, line?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      state.lineListeners.delete(onLine);
      if (err) reject(err);
      else resolve(line!);
    };
    const onLine = (line: string) => {
      if (pattern.test(line)) finish(null, line);
    };
    const fail = (why: string) =>
      new Error(`${why} waiting for ${regex} from '${state.label}' (pid ${child.pid ?? 'none'}); output:\n${outputOf(child)}`);
    const timer = setTimeout(() => finish(fail(`timed out after ${timeoutMs} ms`)), timeoutMs);
    state.lineListeners.add(onLine);
    // Wait for the pipes to drain after exit, so a matching last line still counts.
    void state.exited
      .then(() => (state.spawnError ? undefined : state.closed))
      .then(() => {
        const exit = state.exit;
        const how = state.spawnError
          ? `spawn failed (${state.spawnError.message})`
          : `process exited (code ${exit?.code ?? 'null'}, signal ${exit?.signal ?? 'null'})`;
        finish(fail(how));
      });
  });
}
