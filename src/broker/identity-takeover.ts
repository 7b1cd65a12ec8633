import { spawn } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { rendezvousRanking, rendezvousWinner, type PeerRecord, type PeerView } from '../cluster';
import type { Logger } from '../log';
import { bindPort } from './listen';
import type { TakeoverAddresses } from './takeover-addresses';

/** Options of identity takeover. */
export interface TakeoverOptions {
  /** This node may adopt the endpoints of peers that go off-line. */
  allow: boolean;
  /** Also adopt the own endpoint of peers that leave cleanly (the ones they had adopted always move on). */
  onLeave: boolean;
  /** Endpoints that may be adopted (see takeover-addresses.ts). */
  addresses: TakeoverAddresses;
  /** Shell command run before binding an adopted endpoint (e.g. to move a floating address). */
  onAdopt?: string;
  /** Shell command run after releasing an adopted endpoint, and after an adoption that failed once its on-adopt hook ran. */
  onRelease?: string;
}

/** How long an adopted endpoint's connections get to finish when it is released, ms. */
const RELEASE_GRACE_MS = 1_000;
/** How long an address still in use is tried again before adoption gives up, ms. */
const ADOPT_RETRY_MS = 5_000;
/** Longest a hook command may run, ms. */
const HOOK_TIMEOUT_MS = 10_000;
/** The last characters a hook wrote (stdout and stderr) that are logged. */
const HOOK_OUTPUT_CHARS = 500;
/** Most endpoints one node adopts at once; with its own, its reports stay far below MAX_REPORT_ENDPOINTS. */
export const MAX_ADOPTED = 16;
/**
 * Endpoints at most that wait for a survivor ranked above this node to claim them (one timer
 * each). They are not in this node's reports, so they do not count against MAX_ADOPTED: those
 * that another survivor serves must not keep this node from adopting its own.
 */
const MAX_CLAIMS = 4 * MAX_ADOPTED;
/**
 * A peer is adopted from only after this many reports, spread over this many periods less
 * one (the longer of its and this node's period): a ghost that said a few words is not.
 */
export const ADOPT_AFTER_REPORTS = 4;

/** What identity takeover needs from its broker. */
export interface TakeoverHooks {
  /** Called when the set of served (or claimed) endpoints changed (to report it at once). */
  changed(): void;
  /** False while this node's own control plane is down: then a silent peer proves nothing. */
  connected(): boolean;
  /** How long each rank waits for the ones above it to claim a lost endpoint, ms (two periods). */
  claimGraceMs(): number;
  /** This node's reporting period now, ms. */
  periodMs(): number;
  /** This node's own endpoint (never adopted). */
  selfEndpoint(): string;
}

/** One endpoint adopted or being adopted. */
interface Adoption {
  owner: string;
  /** The on-adopt hook was started: whatever happens next, on-release must follow. */
  hookRan: boolean;
  bound: boolean;
  /** Released (or stopping) while the adoption was under way. */
  released: boolean;
  /** Settles when the hook and the bind are over. */
  done: Promise<void>;
}

/**
 * When a peer goes off-line, exactly one survivor (the same one in every node's
 * view: rendezvous hashing of the lost endpoint over the online nodes that allow
 * takeover) also listens on the lost endpoint, so clients that kept that address are
 * still served. When the owner comes back, the adopter lets the address go.
 *
 * Only what a real node lost is adopted: an endpoint in the allowed addresses, of a peer
 * that reported a while (`ADOPT_AFTER_REPORTS`), not served by a live peer, and at
 * most `MAX_ADOPTED` at once. A claim is reported from the start, before the hook and the
 * bind, so a slow hook does not let the next survivor claim the same endpoint.
 *
 * Views can differ: a node that joined just before the loss may never have heard of
 * the lost node, so the winner never adopts. The next in rank therefore claims the
 * endpoint when, a grace time later, nobody advertises it; should two ever serve
 * one endpoint, the rendezvous loser of the two lets it go (`reconcile`).
 */
export class IdentityTakeover {
  private readonly adoptions = new Map<string, Adoption>();
  /** Endpoints adopted (bound) since start. */
  adopted = 0;
  private stopped = false;
  /** Pending fallback claims by endpoint (at most MAX_CLAIMS). */
  private readonly claims = new Map<string, NodeJS.Timeout>();
  private limitLogged = false;

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

  /** Endpoints adopted or claimed now. */
  endpoints(): string[] {
    return [...this.adoptions.keys()];
  }

  private lost(p: PeerRecord, adoptedOnly = false): void {
    // Cut off from NATS, every peer looks silent: adopting then would steal live addresses.
    if (this.stopped || !this.opts.allow || !this.hooks.connected()) return;
    if (!this.wasReal(p)) {
      this.log.debug({ peer: p.nodeId, reports: p.reportsSinceOnline }, 'not adopting: the peer was not on-line long enough');
      return;
    }
    const candidates = [this.selfId];
    for (const q of this.peers.peers) if (q.status === 'ONLINE' && q.takeover && q.nodeId !== p.nodeId) candidates.push(q.nodeId);
    const lostEndpoints = new Set(adoptedOnly ? p.endpoints.filter((e) => e !== p.endpoint) : [p.endpoint, ...p.endpoints]);
    for (const endpoint of lostEndpoints) {
      if (this.adoptions.has(endpoint) || this.claims.has(endpoint) || !this.mayAdopt(endpoint, p.nodeId)) continue;
      const rank = rendezvousRanking(endpoint, candidates).indexOf(this.selfId);
      if (rank === 0) void this.adopt(endpoint, p.nodeId);
      else if (this.claims.size < MAX_CLAIMS) this.claimLater(endpoint, p.nodeId, rank * this.hooks.claimGraceMs());
    }
  }

  // Reported a while, at the pace of the longer of both periods (less the reports' 10 %
  // jitter): a forged node that said a few words and fell silent is not worth binding an
  // address for.
  private wasReal(p: PeerRecord): boolean {
    const period = Math.max(this.hooks.periodMs(), p.periodMs);
    return p.reportsSinceOnline >= ADOPT_AFTER_REPORTS && p.receivedAt - p.onlineSince >= 0.9 * (ADOPT_AFTER_REPORTS - 1) * period;
  }

  private mayAdopt(endpoint: string, owner: string): boolean {
    if (!this.opts.addresses.allows(endpoint)) {
      this.log.debug({ endpoint, owner, allowed: this.opts.addresses.describe() }, 'not adopting: endpoint outside the takeover addresses');
      return false;
    }
    if (endpoint === this.hooks.selfEndpoint() || this.servedByOthers(endpoint, owner).length > 0) return false;
    if (this.adoptions.size >= MAX_ADOPTED) {
      if (!this.limitLogged) this.log.warn({ endpoint, owner, max: MAX_ADOPTED }, 'not adopting: this node adopts at most MAX_ADOPTED endpoints');
      this.limitLogged = true;
      return false;
    }
    return true;
  }

  private claimLater(endpoint: string, owner: string, ms: number): void {
    const timer = setTimeout(() => {
      this.claims.delete(endpoint);
      this.claimIfUnserved(endpoint, owner);
    }, ms);
    timer.unref();
    this.claims.set(endpoint, timer);
  }

  // The survivors ranked above this one had their grace time: if none serves or claims the
  // endpoint (one never heard of its owner, or could not bind), this one does. While one
  // claims it, look again later: its adoption may still fail.
  private claimIfUnserved(endpoint: string, owner: string): void {
    if (this.stopped || this.adoptions.has(endpoint) || !this.hooks.connected()) return;
    const ownerNow = this.peers.get(owner);
    if (ownerNow && ownerNow.status !== 'OFFLINE') return;
    if (this.servedByOthers(endpoint, owner).length > 0) {
      if (ownerNow) this.claimLater(endpoint, owner, this.hooks.claimGraceMs());
      return;
    }
    if (!this.mayAdopt(endpoint, owner)) return;
    this.log.info({ endpoint, owner }, 'no survivor ranked above this node claimed the endpoint');
    void this.adopt(endpoint, owner);
  }

  /** Live peers other than its owner that advertise `endpoint`. */
  private servedByOthers(endpoint: string, owner: string): string[] {
    return this.peers.peers.filter((q) => q.status !== 'OFFLINE' && q.nodeId !== owner && q.endpoints.includes(endpoint)).map((q) => q.nodeId);
  }

  /** Lets go of adopted endpoints that a peer ranked above this node serves too (called every period). */
  reconcile(): void {
    for (const [endpoint, a] of this.adoptions) {
      const others = this.servedByOthers(endpoint, a.owner);
      if (others.length === 0) continue;
      const keeper = rendezvousWinner(endpoint, [this.selfId, ...others]);
      if (keeper !== this.selfId) void this.release(endpoint, `node ${keeper} serves it too`);
    }
  }

  private async adopt(endpoint: string, owner: string): Promise<void> {
    const a: Adoption = { owner, hookRan: false, bound: false, released: false, done: Promise.resolve() };
    this.adoptions.set(endpoint, a);
    // Claimed from now on in this node's reports: the survivors ranked below wait for it.
    this.hooks.changed();
    let failure: Error | undefined;
    a.done = (async () => {
      try {
        if (this.opts.onAdopt) {
          a.hookRan = true;
          await runHook(this.opts.onAdopt, endpoint, owner, this.log);
        }
        if (!a.released) {
          await this.bindWhenFree(endpoint, a);
          a.bound = true;
        }
      } catch (err) {
        failure = err as Error;
      }
    })();
    await a.done;
    if (a.released) return; // release() finishes the job
    if (failure) {
      this.adoptions.delete(endpoint);
      this.log.warn({ endpoint, owner, err: failure.message }, 'could not adopt endpoint');
      this.hooks.changed();
      // The hook may have moved the address here before the bind failed: move it back.
      if (a.hookRan && this.opts.onRelease) await runHook(this.opts.onRelease, endpoint, owner, this.log).catch(() => {});
      return;
    }
    this.adopted++;
    this.log.info({ endpoint, owner }, 'adopted endpoint of off-line peer');
    this.hooks.changed();
  }

  // A node that leaves cleanly says LEAVING before it lets its adopted addresses go, so
  // such an address can still be taken for a moment: try again until it is free.
  private async bindWhenFree(endpoint: string, a: Adoption): Promise<void> {
    const deadline = performance.now() + ADOPT_RETRY_MS;
    for (;;) {
      try {
        await bindPort(this.server, endpoint, this.credentials);
        return;
      } catch (err) {
        const retry = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' && performance.now() < deadline;
        if (!retry || a.released) throw err;
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
    for (const [endpoint, a] of this.adoptions) {
      if (a.owner === p.nodeId || p.endpoint === endpoint) void this.release(endpoint, `node ${p.nodeId} is back`);
    }
  }

  /**
   * Stops serving an adopted endpoint. An adoption still under way (its on-adopt hook
   * running) is let finish first, so on-release always comes after on-adopt.
   */
  async release(endpoint: string, why: string): Promise<void> {
    const a = this.adoptions.get(endpoint);
    if (a === undefined) return;
    this.adoptions.delete(endpoint);
    this.limitLogged = false;
    a.released = true;
    this.hooks.changed();
    await a.done;
    if (a.bound) {
      this.server.drain(endpoint, RELEASE_GRACE_MS);
      this.server.unbind(endpoint);
    }
    this.log.info({ endpoint, owner: a.owner, why }, 'released adopted endpoint');
    if (a.hookRan && this.opts.onRelease) await runHook(this.opts.onRelease, endpoint, a.owner, this.log).catch(() => {});
  }

  /** Releases everything (at stop). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.claims.values()) clearTimeout(t);
    this.claims.clear();
    await Promise.all(this.endpoints().map((e) => this.release(e, 'stopping')));
  }
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
    // Only the end is logged: a chatty hook must not hold all it wrote for up to HOOK_TIMEOUT_MS.
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-HOOK_OUTPUT_CHARS));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), HOOK_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      log.info({ command, endpoint, node, code, output }, 'takeover hook ran');
      if (code === 0) resolve();
      else reject(new Error(`hook '${command}' exited with ${code ?? signal}`));
    });
  });
}
