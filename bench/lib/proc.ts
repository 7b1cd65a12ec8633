import { fork, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import readline from 'node:readline';

/** How many output lines are kept per child, for failure messages. */
const KEPT_LINES = 60;
/** Time a child gets to exit after SIGTERM before SIGKILL. */
const DEFAULT_KILL_TIMEOUT_MS = 3_000;
/** Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`; 100 on Linux). */
const CLK_TCK = 100;

/** A process the bench started; it is killed by PID, never by name. */
export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Last lines of stdout and stderr. */
  readonly lines: string[];
  readonly exited: Promise<void>;
  exitedNow: boolean;
}

const running = new Map<number, Child>();
const lineWaiters = new Map<Child, Set<(line: string) => void>>();

function track(name: string, proc: ChildProcess): Child {
  if (proc.pid === undefined) throw new Error(`could not start '${name}'`);
  let resolveExited!: () => void;
  const child: Child = {
    name,
    proc,
    pid: proc.pid,
    lines: [],
    exited: new Promise<void>((r) => (resolveExited = r)),
    exitedNow: false,
  };
  lineWaiters.set(child, new Set());
  const onLine = (line: string) => {
    child.lines.push(line);
    if (child.lines.length > KEPT_LINES) child.lines.shift();
    for (const w of lineWaiters.get(child) ?? []) w(line);
  };
  for (const s of [proc.stdout, proc.stderr]) {
    if (s) readline.createInterface({ input: s, crlfDelay: Infinity }).on('line', onLine);
  }
  proc.on('error', () => {});
  proc.once('exit', () => {
    child.exitedNow = true;
    running.delete(child.pid);
    resolveExited();
  });
  running.set(child.pid, child);
  return child;
}

/** Starts `cmd args` with stdout and stderr captured. */
export function startProcess(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  return track(name, spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
}

/** Starts a Node module of the bench with an IPC channel (load generators, simulators). */
export function forkModule(name: string, modulePath: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  return track(
    name,
    fork(modulePath, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: [], env: { ...process.env, ...env } }),
  );
}

/** Calls `fn` with every later line of the child's stdout and stderr; the function returned stops it. */
export function onLine(child: Child, fn: (line: string) => void): () => void {
  const waiters = lineWaiters.get(child)!;
  waiters.add(fn);
  return () => waiters.delete(fn);
}

/** Resolves with the first line matching `re`; rejects on timeout or exit, quoting the output. */
export function waitForLine(child: Child, re: RegExp, timeoutMs = 15_000): Promise<string> {
  const seen = child.lines.find((l) => re.test(l));
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const waiters = lineWaiters.get(child)!;
    const done = (err: Error | null, line?: string) => {
      clearTimeout(timer);
      waiters.delete(onLine);
      if (err) reject(err);
      else resolve(line!);
    };
    const onLine = (line: string) => {
      if (re.test(line)) done(null, line);
    };
    const fail = (why: string) => new Error(`${child.name} (pid ${child.pid}) ${why} waiting for ${re}:\n${child.lines.join('\n')}`);
    const timer = setTimeout(() => done(fail(`timed out after ${timeoutMs} ms`)), timeoutMs);
    waiters.add(onLine);
    void child.exited.then(() => setTimeout(() => done(fail('exited')), 50));
  });
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Sends `sig` to the child by PID and waits for it to exit, escalating to SIGKILL. */
export async function stopChild(child: Child, sig: NodeJS.Signals = 'SIGTERM', timeoutMs = DEFAULT_KILL_TIMEOUT_MS): Promise<void> {
  if (child.exitedNow) return;
  signal(child.pid, sig);
  const timer = setTimeout(() => signal(child.pid, 'SIGKILL'), timeoutMs);
  await child.exited;
  clearTimeout(timer);
}

/** Stops several children at once. */
export async function stopAll(children: Iterable<Child>): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
}

/** SIGKILLs every child still running (used on exit and on Ctrl-C). */
export function killAllNow(): void {
  for (const child of running.values()) signal(child.pid, 'SIGKILL');
}

process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    killAllNow();
    process.exit(130);
  });
}

/** CPU time (user + system, all threads) a process has used so far, ms; NaN when it is gone. */
export function cpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** A CPU meter over a window: `start()` then `stop()` gives ms of CPU per process. */
export class CpuWindow {
  private readonly at0 = new Map<number, number>();
  private t0 = 0;
  constructor(private readonly pids: number[]) {}
  start(): void {
    this.t0 = performance.now();
    for (const pid of this.pids) this.at0.set(pid, cpuMs(pid));
  }
  /** CPU ms used by each pid since start, and the wall ms of the window. */
  stop(): { cpu: Map<number, number>; wallMs: number } {
    const wallMs = performance.now() - this.t0;
    const cpu = new Map<number, number>();
    for (const pid of this.pids) cpu.set(pid, cpuMs(pid) - (this.at0.get(pid) ?? NaN));
    return { cpu, wallMs };
  }
}

/** CPU time the whole machine has been busy (all cores, steal excluded), ms. */
export function machineBusyMs(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const busy = f[0] + f[1] + f[2] + f[5] + f[6];
  return (busy * 1000) / CLK_TCK;
}

/**
 * Waits (at most `maxWaitMs`) until the machine is quiet: other work using less than
 * `maxBusyCores` cores over a short sample. Returns the cores busy in the last sample.
 */
export async function waitQuiet(maxWaitMs: number, maxBusyCores = 0.5): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const b0 = machineBusyMs();
    const t0 = performance.now();
    await sleep(500);
    const cores = (machineBusyMs() - b0) / (performance.now() - t0);
    if (cores < maxBusyCores || Date.now() >= deadline) return cores;
    await sleep(1_000);
  }
}

/** The 1-, 5- and 15-minute load averages. */
export function loadAverage(): [number, number, number] {
  const [a, b, c] = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
  return [a, b, c];
}

/** A TCP port free on 127.0.0.1 right now (bound later by someone else, so a race is possible). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
