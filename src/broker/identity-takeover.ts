import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { rendezvousRanking, rendezvousWinner, type PeerRecord, type PeerView } from '../cluster';
import type { Logger } from '../log';
import { parseHostPort } from '../wire';

/** Options of identity takeover. */
export interface TakeoverOptions {
  /** This node may adopt the endpoints of peers that go off-line. */
  allow: boolean;
  /** Also adopt the own endpoint of peers that leave cleanly (the ones they had adopted always move on). */
  onLeave: boolean;
  /** Shell command run before binding an adopted endpoint (e.g. to move a floating address). */
  onAdopt?: string;
  /** Shell command run after releasing an adopted endpoint. */
  onRelease?: string;
}

/** How long an adopted endpoint's connections get to finish when it is released, ms. */
const RELEASE_GRACE_MS = 1_000;
/** How long an address still in use is tried again before adoption gives up, ms. */
const ADOPT_RETRY_MS = 5_000;
/** Longest a hook command may run, ms. */
const HOOK_TIMEOUT_MS = 10_000;

/** What identity takeover needs from its broker. */
export interface TakeoverHooks {
  /** Called when the set of served endpoints changed (to report it at once). */
  changed(): void;
  /** False while this node's own control plane is down: then a silent peer proves nothing. */
  connected(): boolean;
  /** How long each rank waits for the ones above it to claim a lost endpoint, ms (two periods). */
  claimGraceMs(): number;
}

/**
 * When a peer goes off-line, exactly one survivor (the same one in every node's
 * view: rendezvous hashing of the lost endpoint over the online nodes that allow
 * takeover) also listens on the lost endpoint, so clients that kept that address are
 * still served. When the owner comes back, the adopter lets the address go.
 *
 * Views can differ: a node that joined just before the loss may never have heard of
 * the lost node, so the winner never adopts. The next in rank therefore claims the
 * endpoint when, a grace time later, nobody advertises it; should two ever serve
 * one endpoint, the rendezvous loser of the two lets it go (`reconcile`).
 */
export class IdentityTakeover {
  /** Endpoints this node serves for others: endpoint → the node it belonged to. */
  readonly adopted = new Map<string, string>();
  private stopped = false;
  private readonly claimTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly selfId: string,
    private readonly server: grpc.Server,
    private readonly credentials: grpc.ServerCredentials,
    private readonly peers: PeerView,
    private readonly opts: TakeoverOptions,
    private readonly log: Logger,
    private readonly hooks: TakeoverHooks,
  ) {
    peers.on('offline', (p) => this.lost(p));
    // A node that leaves cleanly takes its own address with it (unless takeover-on-leave),
    // but the addresses it had adopted would go unserved: those move on.
    peers.on('left', (p) => this.lost(p, !this.opts.onLeave));
    peers.on('online', (p) => this.returned(p));
  }

  /** Endpoints adopted now. */
  endpoints(): string[] {
    return [...this.adopted.keys()];
  }

  private lost(p: PeerRecord, adoptedOnly = false): void {
    // Cut off from NATS, every peer looks silent: adopting then would steal live addresses.
    if (this.stopped || !this.opts.allow || !this.hooks.connected()) return;
    const candidates = [this.selfId];
    for (const q of this.peers.peers) if (q.status === 'ONLINE' && q.takeover && q.nodeId !== p.nodeId) candidates.push(q.nodeId);
    const lostEndpoints = new Set(adoptedOnly ? p.endpoints.filter((e) => e !== p.endpoint) : [p.endpoint, ...p.endpoints]);
    for (const endpoint of lostEndpoints) {
      if (this.adopted.has(endpoint)) continue;
      const rank = rendezvousRanking(endpoint, candidates).indexOf(this.selfId);
      if (rank === 0) {
        void this.adopt(endpoint, p.nodeId);
        continue;
      }
      const timer = setTimeout(() => {
        this.claimTimers.delete(timer);
        this.claimIfUnserved(endpoint, p.nodeId);
      }, rank * this.hooks.claimGraceMs());
      timer.unref();
      this.claimTimers.add(timer);
    }
  }

  // The survivors ranked above this one had their grace time: if none serves the
  // endpoint (one never heard of its owner, or could not bind), this one does.
  private claimIfUnserved(endpoint: string, owner: string): void {
    if (this.stopped || this.adopted.has(endpoint) || !this.hooks.connected()) return;
    const ownerNow = this.peers.get(owner);
    if (ownerNow && ownerNow.status !== 'OFFLINE') return;
    if (this.servedByOthers(endpoint, owner).length > 0) return;
    this.log.info({ endpoint, owner }, 'no survivor ranked above this node claimed the endpoint');
    void this.adopt(endpoint, owner);
  }

  /** Live peers other than its owner that advertise `endpoint`. */
  private servedByOthers(endpoint: string, owner: string): string[] {
    return this.peers.peers.filter((q) => q.status !== 'OFFLINE' && q.nodeId !== owner && q.endpoints.includes(endpoint)).map((q) => q.nodeId);
  }

  /** Lets go of adopted endpoints that a peer ranked above this node serves too (called every period). */
  reconcile(): void {
    for (const [endpoint, owner] of this.adopted) {
      const others = this.servedByOthers(endpoint, owner);
      if (others.length === 0) continue;
      const keeper = rendezvousWinner(endpoint, [this.selfId, ...others]);
      if (keeper !== this.selfId) void this.release(endpoint, `node ${keeper} serves it too`);
    }
  }

  private async adopt(endpoint: string, owner: string): Promise<void> {
    this.adopted.set(endpoint, owner);
    try {
      if (this.opts.onAdopt) await runHook(this.opts.onAdopt, endpoint, owner, this.log);
      await this.bindWhenFree(endpoint);
    } catch (err) {
      this.adopted.delete(endpoint);
      this.log.warn({ endpoint, owner, err: (err as Error).message }, 'could not adopt endpoint');
      return;
    }
    if (this.stopped || !this.adopted.has(endpoint)) {
      this.server.unbind(endpoint);
      return;
    }
    this.log.info({ endpoint, owner }, 'adopted endpoint of off-line peer');
    this.hooks.changed();
  }

  // A node that leaves cleanly says LEAVING before it lets its adopted addresses go, so
  // such an address can still be taken for a moment: try again until it is free.
  private async bindWhenFree(endpoint: string): Promise<void> {
    const deadline = performance.now() + ADOPT_RETRY_MS;
    for (;;) {
      try {
        await bindPort(this.server, endpoint, this.credentials);
        return;
      } catch (err) {
        const retry = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' && performance.now() < deadline;
        if (!retry || this.stopped || !this.adopted.has(endpoint)) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Looks again at peers that went off-line while this node could not tell (its NATS was down). */
  recheck(): void {
    for (const p of this.peers.peers) if (p.status === 'OFFLINE') this.lost(p);
  }

  // The owner is back (a new incarnation reports): give its address back.
  private returned(p: PeerRecord): void {
    for (const [endpoint, owner] of this.adopted) {
      if (owner === p.nodeId || p.endpoint === endpoint) void this.release(endpoint, `node ${p.nodeId} is back`);
    }
  }

  /** Stops serving an adopted endpoint. */
  async release(endpoint: string, why: string): Promise<void> {
    const owner = this.adopted.get(endpoint);
    if (owner === undefined) return;
    this.adopted.delete(endpoint);
    this.server.drain(endpoint, RELEASE_GRACE_MS);
    this.server.unbind(endpoint);
    this.log.info({ endpoint, owner, why }, 'released adopted endpoint');
    this.hooks.changed();
    if (this.opts.onRelease) await runHook(this.opts.onRelease, endpoint, owner, this.log).catch(() => {});
  }

  /** Releases everything (at stop). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.claimTimers) clearTimeout(t);
    this.claimTimers.clear();
    await Promise.all(this.endpoints().map((e) => this.release(e, 'stopping')));
  }
}

/**
 * Binds `address`, first checking with a plain listen that it is free: grpc-js keeps a
 * failed bind and answers every later bind of the same address with the same failure,
 * so a taken address must never reach it. If one does (a race), the next try names the
 * address differently (`ipv4:`/`ipv6:` instead of the default `dns:`).
 */
export async function bindPort(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  const { host, port } = parseHostPort(address);
  if (port !== 0 && (await addressInUse(host, port))) {
    throw Object.assign(new Error(`listen EADDRINUSE: address already in use ${address}`), { code: 'EADDRINUSE' });
  }
  const tries = poisoned.get(server)?.get(address) ?? 0;
  const target = tries === 0 ? address : `${host.startsWith('[') ? 'ipv6' : 'ipv4'}:${address}`;
  return new Promise<number>((resolve, reject) =>
    server.bindAsync(target, creds, (err, p) => {
      if (!err) return resolve(p);
      const m = poisoned.get(server) ?? new Map<string, number>();
      m.set(address, tries + 1);
      poisoned.set(server, m);
      reject(err);
    }),
  );
}

const poisoned = new WeakMap<grpc.Server, Map<string, number>>();

/** True when a plain listen on host:port fails with EADDRINUSE. */
function addressInUse(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE'));
    probe.listen({ host: host.replace(/^\[|\]$/g, ''), port, exclusive: true }, () => probe.close(() => resolve(false)));
  });
}

/** Runs a hook with the endpoint and node in its environment; rejects on failure or time-out. */
function runHook(command: string, endpoint: string, node: string, log: Logger): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, {
      shell: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PEERBROKER_ENDPOINT: endpoint, PEERBROKER_NODE: node },
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), HOOK_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      log.info({ command, endpoint, node, code, output: output.slice(-500) }, 'takeover hook ran');
      if (code === 0) resolve();
      else reject(new Error(`hook '${command}' exited with ${code ?? signal}`));
    });
  });
}
