import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, freePorts } from './ports';
import { killTracked, onProcessCleanup, outputOf, spawnTracked, waitForLine } from './processes';

/** Time a server gets to log "Server is ready" and accept connections. */
export const DEFAULT_NATS_READY_TIMEOUT_MS = 15_000;

/** Time a cluster gets until every server sees routes to all the others. */
export const DEFAULT_ROUTES_TIMEOUT_MS = 20_000;

/** Cluster name used by `startNatsCluster()` unless told otherwise. */
export const DEFAULT_CLUSTER_NAME = 'pbtest';

const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** Options for `startNatsServer()`; every port left out is picked free. */
export interface NatsServerOptions {
  /** Client port. Default: a free port. */
  port?: number;
  /** Loopback address to bind (client, cluster and monitoring). Default '127.0.0.1'. */
  host?: string;
  /** Enable JetStream with a fresh temporary store directory. Default false. */
  jetstream?: boolean;
  /** Cluster name; setting it (or `clusterPort`/`routes`) makes the server a cluster member. */
  clusterName?: string;
  /** Port for routes from other servers. Default: a free port when clustered. */
  clusterPort?: number;
  /** Route URLs to solicit, e.g. `nats://127.0.0.1:6222`. */
  routes?: string[];
  /** HTTP monitoring port (`/varz`, `/routez`). Default: none, or a free port when clustered. */
  monitorPort?: number;
  /** Server name; JetStream clusters need it unique. Default `pb-<port>`. */
  serverName?: string;
  /** Extra command-line arguments, appended last. */
  extraArgs?: string[];
  /** How long to wait for the server to be ready. Default 15 s. */
  readyTimeoutMs?: number;
}

/** A nats-server process started by a test. */
export interface NatsServerHandle {
  /** Client URL, `nats://127.0.0.1:PORT`. */
  readonly url: string;
  /** Client port. */
  readonly port: number;
  /** PID of the current process (changes on restart). */
  readonly pid: number;
  /** Route URL other servers connect to, if clustered. */
  readonly clusterUrl: string | undefined;
  /** Monitoring base URL, `http://127.0.0.1:M`, if monitoring is on. */
  readonly monitorUrl: string | undefined;
  /** JetStream store directory, if JetStream is on (kept across restarts). */
  readonly storeDir: string | undefined;
  /** Full argument list passed to nats-server. */
  readonly args: readonly string[];
  /** True while the process runs. */
  readonly running: boolean;
  /** The current child process. */
  readonly child: ChildProcess;
  /** Last ~200 lines of the server's log, for failure messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it has exited. */
  stop(): Promise<void>;
  /** SIGKILL: a crash, no clean shutdown. */
  kill9(): Promise<void>;
  /** Stops the server if it runs, then starts it again on the same ports with the same arguments. */
  restart(): Promise<void>;
}

let cachedBinary: string | undefined;

/** Path of the nats-server binary: $PEERBROKER_NATS_SERVER, else what scripts/ensure-nats.sh prints. */
export function natsServerBinary(): string {
  if (cachedBinary) return cachedBinary;
  const fromEnv = process.env.PEERBROKER_NATS_SERVER;
  if (fromEnv) {
    cachedBinary = fromEnv;
    return cachedBinary;
  }
  try {
    cachedBinary = execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'ensure-nats.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`cannot find nats-server: ${stderr || (err as Error).message}`);
  }
  return cachedBinary;
}

// JetStream store directories live under one temporary directory per test process.
let tmpRoot: string | undefined;
function makeStoreDir(): string {
  if (!tmpRoot) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'peerbroker-nats-'));
    tmpRoot = root;
    // Runs after the tracked servers are killed; retries cover a last write racing the removal.
    onProcessCleanup(() => fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 }));
  }
  return fs.mkdtempSync(path.join(tmpRoot, 'js-'));
}

function assertLoopback(host: string): void {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) {
    throw new Error(`nats test servers bind to loopback only: host '${host}' is not 127.x.x.x`);
  }
}

/** Resolves once something accepts TCP connections on host:port. */
async function waitForTcp(host: string, port: number, deadline: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      socket.setTimeout(1_000);
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('timeout', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing accepts connections on ${host}:${port}`);
    await sleep(50);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const ADDRESS_IN_USE = /address already in use/i;

/**
 * Starts a nats-server on loopback and resolves once it accepts connections.
 * Ports left out are picked free; if one is taken before the server binds
 * it, the server is started again on new free ports.
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const attempts = opts.port === undefined || opts.clusterPort === undefined || opts.monitorPort === undefined ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      const retry = attempt < attempts && err instanceof NatsStartError && ADDRESS_IN_USE.test(err.output);
      if (!retry) throw err;
    }
  }
}

class NatsStartError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
    this.name = 'NatsStartError';
  }
}

async function startOnce(opts: NatsServerOptions): Promise<NatsServerHandle> {
  const host = opts.host ?? '127.0.0.1';
  assertLoopback(host);
  const clustered = opts.clusterName !== undefined || opts.clusterPort !== undefined || (opts.routes?.length ?? 0) > 0;
  const port = opts.port ?? (await freePort(host));
  const clusterPort = clustered ? (opts.clusterPort ?? (await freePort(host))) : undefined;
  const monitorPort = opts.monitorPort ?? (clustered ? await freePort(host) : undefined);
  const storeDir = opts.jetstream ? makeStoreDir() : undefined;
  const serverName = opts.serverName ?? `pb-${port}`;

  const args = ['-a', host, '-p', String(port), '--server_name', serverName];
  if (monitorPort !== undefined) args.push('-m', String(monitorPort));
  if (storeDir !== undefined) args.push('-js', '-sd', storeDir);
  if (clusterPort !== undefined) {
    args.push('--cluster_name', opts.clusterName ?? DEFAULT_CLUSTER_NAME, '--cluster', `nats://${host}:${clusterPort}`);
    if (opts.routes?.length) args.push('--routes', opts.routes.join(','));
  }
  if (opts.extraArgs) args.push(...opts.extraArgs);

  const binary = natsServerBinary();
  const readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULT_NATS_READY_TIMEOUT_MS;
  let child: ChildProcess;

  async function spawnAndWait(): Promise<void> {
    child = spawnTracked(binary, args);
    const deadline = Date.now() + readyTimeoutMs;
    try {
      await waitForLine(child, /Server is ready/, readyTimeoutMs);
      await waitForTcp(host, port, deadline);
    } catch (err) {
      await killTracked(child, 'SIGKILL');
      throw new NatsStartError(
        `nats-server on ${host}:${port} did not start: ${(err as Error).message.split('\n')[0]}\n${outputOf(child)}`,
        outputOf(child),
      );
    }
  }

  await spawnAndWait();

  const isRunning = () => child.exitCode === null && child.signalCode === null;
  const handle: NatsServerHandle = {
    url: `nats://${host}:${port}`,
    port,
    get pid() {
      return child.pid!;
    },
    clusterUrl: clusterPort !== undefined ? `nats://${host}:${clusterPort}` : undefined,
    monitorUrl: monitorPort !== undefined ? `http://${host}:${monitorPort}` : undefined,
    storeDir,
    args,
    get running() {
      return isRunning();
    },
    get child() {
      return child;
    },
    output: () => outputOf(child),
    stop: async () => {
      await killTracked(child, 'SIGTERM');
    },
    kill9: async () => {
      await killTracked(child, 'SIGKILL');
    },
    restart: async () => {
      if (isRunning()) await killTracked(child, 'SIGTERM');
      await spawnAndWait();
    },
  };
  return handle;
}

/** Route information from a server's `/routez` monitoring endpoint. */
export interface Routez {
  num_routes: number;
  routes?: Array<{ rid: number; remote_id: string; ip: string; port: number }>;
}

/** JetStream information from a server's `/jsz` monitoring endpoint (the part the helpers read). */
export interface Jsz {
  meta_cluster?: { name?: string; leader?: string; cluster_size?: number };
}

/** Client connections from a server's `/connz` monitoring endpoint (the part the helpers read). */
export interface Connz {
  num_connections?: number;
  connections?: Array<{ cid?: number; name?: string }>;
}

/** Fetches `/connz` (up to `limit` connections, default 1024) from a server started with monitoring (loopback only). */
export function connz(server: NatsServerHandle, limit = 1024): Promise<Connz> {
  return monitorGet<Connz>(server, `/connz?limit=${limit}`);
}

/** Fetches `/routez` from a server started with monitoring (loopback only). */
export function routez(server: NatsServerHandle): Promise<Routez> {
  return monitorGet<Routez>(server, '/routez');
}

/** Fetches `/jsz` from a server started with monitoring (loopback only). */
export function jsz(server: NatsServerHandle): Promise<Jsz> {
  return monitorGet<Jsz>(server, '/jsz');
}

function monitorGet<T>(server: NatsServerHandle, endpoint: string): Promise<T> {
  const base = server.monitorUrl;
  if (!base) return Promise.reject(new Error(`server ${server.url} has no monitoring port`));
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}${endpoint}`, { timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as T);
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`timed out fetching ${base}${endpoint}`)));
    req.on('error', reject);
  });
}

/** Number of distinct servers a server has routes to (route pooling may open several per peer). */
async function routedPeers(server: NatsServerHandle): Promise<number> {
  const info = await routez(server);
  const ids = new Set((info.routes ?? []).map((r) => r.remote_id));
  return Math.max(ids.size, info.routes ? 0 : info.num_routes);
}

/** A cluster of nats-servers with routes to each other. */
export interface NatsClusterHandle {
  readonly servers: NatsServerHandle[];
  /** Client URLs, in server order. */
  readonly urls: string[];
  /** Resolves once every running server has routes to every other running server. */
  waitForRoutes(timeoutMs?: number): Promise<void>;
  /** Resolves once every running server knows the JetStream meta leader (JetStream clusters only). */
  waitForJetStream(timeoutMs?: number): Promise<void>;
  /** Stops every server. */
  stop(): Promise<void>;
}

/** Options for `startNatsCluster()`. */
export interface NatsClusterOptions {
  /** Cluster name. Default 'pbtest'. */
  clusterName?: string;
  /** Enable JetStream on every server. Default false. */
  jetstream?: boolean;
  /** Loopback address to bind. Default '127.0.0.1'. */
  host?: string;
  /** How long to wait for the routes (and the JetStream meta leader). Default 20 s. */
  routesTimeoutMs?: number;
}

/**
 * Starts `n` nats-servers on loopback, each routed to all the others, and
 * resolves once every server sees routes to the other n-1 (and, with
 * JetStream, knows the meta leader).
 */
export async function startNatsCluster(n = 3, opts: NatsClusterOptions = {}): Promise<NatsClusterHandle> {
  // Ports are picked free but only bound later; if another process takes one meanwhile, pick again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(n, opts);
    } catch (err) {
      const retry = attempt < 3 && err instanceof NatsStartError && ADDRESS_IN_USE.test(err.output);
      if (!retry) throw err;
    }
  }
}

async function startClusterOnce(n: number, opts: NatsClusterOptions): Promise<NatsClusterHandle> {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`startNatsCluster: 'n' must be a positive integer, got ${n}`);
  const host = opts.host ?? '127.0.0.1';
  assertLoopback(host);
  const ports = await freePorts(3 * n, host);
  const clientPorts = ports.slice(0, n);
  const clusterPorts = ports.slice(n, 2 * n);
  const monitorPorts = ports.slice(2 * n);
  const routeUrls = clusterPorts.map((p) => `nats://${host}:${p}`);

  const started = await Promise.allSettled(
    clientPorts.map((port, i) =>
      startNatsServer({
        host,
        port,
        clusterPort: clusterPorts[i],
        monitorPort: monitorPorts[i],
        clusterName: opts.clusterName ?? DEFAULT_CLUSTER_NAME,
        routes: routeUrls.filter((_, j) => j !== i),
        jetstream: opts.jetstream,
        serverName: `pb-${i}-${port}`,
      }),
    ),
  );
  const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(servers.map((s) => s.stop()));
    throw failed.reason;
  }

  const cluster: NatsClusterHandle = {
    servers,
    urls: servers.map((s) => s.url),
    waitForRoutes: async (timeoutMs = opts.routesTimeoutMs ?? DEFAULT_ROUTES_TIMEOUT_MS) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const live = servers.filter((s) => s.running);
        const counts = await Promise.all(live.map((s) => routedPeers(s).catch(() => -1)));
        if (counts.every((c) => c >= live.length - 1)) return;
        if (Date.now() > deadline) {
          const detail = live.map((s, i) => `${s.url}: ${counts[i]} routed peers`).join(', ');
          throw new Error(`nats cluster routes not established after ${timeoutMs} ms (${detail})`);
        }
        await sleep(100);
      }
    },
    waitForJetStream: async (timeoutMs = opts.routesTimeoutMs ?? DEFAULT_ROUTES_TIMEOUT_MS) => {
      if (!opts.jetstream) throw new Error('waitForJetStream: the cluster was started without jetstream');
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const live = servers.filter((s) => s.running);
        const leaders = await Promise.all(live.map((s) => jsz(s).then((j) => j.meta_cluster?.leader, () => undefined)));
        if (leaders.every((l) => l)) return;
        if (Date.now() > deadline) {
          const detail = live.map((s, i) => `${s.url}: leader ${leaders[i] ?? 'none'}`).join(', ');
          throw new Error(`nats jetstream meta leader not elected after ${timeoutMs} ms (${detail})`);
        }
        await sleep(100);
      }
    },
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };

  try {
    await cluster.waitForRoutes();
    if (opts.jetstream) await cluster.waitForJetStream();
  } catch (err) {
    const logs = servers.map((s) => `--- ${s.url} ---\n${s.output()}`).join('\n');
    await cluster.stop();
    throw new Error(`${(err as Error).message}\n${logs}`);
  }
  return cluster;
}
