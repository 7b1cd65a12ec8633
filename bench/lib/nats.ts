import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, sleep, startProcess, stopChild, waitForLine, type Child } from './proc';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

let binary: string | undefined;
/** The nats-server binary: $PEERBROKER_NATS_SERVER, else what scripts/ensure-nats.sh finds. */
export function natsServerBinary(): string {
  binary ??=
    process.env.PEERBROKER_NATS_SERVER ??
    execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'ensure-nats.sh')], { encoding: 'utf8' }).trim();
  return binary;
}

/** A nats-server the bench started on 127.0.0.1. */
export class NatsServer {
  child!: Child;
  private constructor(
    readonly name: string,
    readonly port: number,
    readonly monitorPort: number,
    private readonly args: string[],
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Starts a server; `config` is written to a file (e.g. `max_payload: 8MB`). */
  static async start(
    name: string,
    opts: { config?: string; cluster?: { name: string; port: number; routes: number[] }; port?: number } = {},
  ): Promise<NatsServer> {
    const port = opts.port ?? (await freePort());
    const monitorPort = await freePort();
    const args = ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), '--server_name', name];
    if (opts.config) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerbroker-bench-nats-'));
      const file = path.join(dir, 'nats.conf');
      fs.writeFileSync(file, opts.config);
      args.push('-c', file);
    }
    if (opts.cluster) {
      args.push('--cluster_name', opts.cluster.name, '--cluster', `nats://127.0.0.1:${opts.cluster.port}`);
      if (opts.cluster.routes.length) args.push('--routes', opts.cluster.routes.map((p) => `nats://127.0.0.1:${p}`).join(','));
    }
    const s = new NatsServer(name, port, monitorPort, args);
    await s.spawn();
    return s;
  }

  private async spawn(): Promise<void> {
    this.child = startProcess(`nats-server ${this.name}`, natsServerBinary(), this.args);
    await waitForLine(this.child, /Server is ready/, 15_000);
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Stops the server (SIGTERM, by PID). */
  stop(): Promise<void> {
    return stopChild(this.child);
  }

  /** Starts it again with the same ports and arguments. */
  restart(): Promise<void> {
    return this.spawn();
  }

  /** The server's `/varz` monitoring figures. */
  varz(): Promise<Varz> {
    return getJson<Varz>(`http://127.0.0.1:${this.monitorPort}/varz`);
  }

  /** How many other servers this one has routes to. */
  async routedPeers(): Promise<number> {
    const r = await getJson<{ routes?: Array<{ remote_id: string }> }>(`http://127.0.0.1:${this.monitorPort}/routez`);
    return new Set((r.routes ?? []).map((x) => x.remote_id)).size;
  }
}

/** The part of `/varz` the bench reads. */
export interface Varz {
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
  connections: number;
  subscriptions: number;
}

/** Starts `n` servers routed to each other; resolves once every one sees the others. */
export async function startNatsCluster(n: number, prefix: string, timeoutMs = 20_000): Promise<NatsServer[]> {
  const clusterPorts: number[] = [];
  for (let i = 0; i < n; i++) clusterPorts.push(await freePort());
  const servers = await Promise.all(
    clusterPorts.map((port, i) =>
      NatsServer.start(`${prefix}-${i + 1}`, { cluster: { name: prefix, port, routes: clusterPorts.filter((_, j) => j !== i) } }),
    ),
  );
  await waitForRoutes(servers, timeoutMs);
  return servers;
}

/** Resolves once every server has routes to all the others; bounded by `timeoutMs`. */
export async function waitForRoutes(servers: NatsServer[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await Promise.all(servers.map((s) => s.routedPeers().catch(() => -1)));
    if (counts.every((c) => c >= servers.length - 1)) return;
    if (Date.now() > deadline) throw new Error(`nats routes not up after ${timeoutMs} ms: ${counts.join(', ')}`);
    await sleep(100);
  }
}

function getJson<T>(url: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as T);
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`timed out: ${url}`)));
    req.on('error', reject);
  });
}
