import * as net from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import type { PeerView } from '../cluster';
import type { Logger } from '../log';
import { parseHostPort } from '../wire';
import type { ConnectionLimits } from './connection-limits';
import type { NodeStatus } from './node-status';
import { reclaimAddress } from './reclaim';

/**
 * Binds the node's gRPC server: its own address at start (asked back from the peer that
 * adopted it, when one did), and every address after the guard each bind needs.
 */
export class NodeListener {
  private guardWarned = false;

  constructor(
    private readonly server: grpc.Server,
    private readonly limits: ConnectionLimits,
    private readonly log: Logger,
  ) {}

  /** Binds `address` (see `bindPort`), then guards what it serves. */
  async bind(address: string, creds: grpc.ServerCredentials): Promise<number> {
    const port = await bindPort(this.server, address, creds);
    this.guardHeaders();
    return port;
  }

  /**
   * Binds the node's own address at start; `endpoint` is where clients reach it (`advertise`,
   * else the address bound). The address may be held by the peer that adopted it while this
   * node was away: with `canReclaim` (a control plane to join, a fixed port) that is no
   * failure: `bound` is false, and the node joins the cluster unhealthy (no redirects come
   * here), then asks for it back (`reclaim`).
   */
  async bindOwn(listen: string, advertise: string | undefined, creds: grpc.ServerCredentials, canReclaim: boolean): Promise<{ endpoint: string; bound: boolean }> {
    const { host, port: wanted } = parseHostPort(listen);
    try {
      const port = await this.bind(listen, creds);
      return { endpoint: advertise ?? `${host}:${port}`, bound: true };
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (wanted === 0 || !canReclaim || err.code !== 'EADDRINUSE') throw new Error(`cannot listen on '${listen}': ${err.message}`);
      return { endpoint: advertise ?? `${host}:${wanted}`, bound: false };
    }
  }

  /**
   * Binds the own address that was in use at start: this node's report (a new incarnation)
   * tells the adopter it is back, which releases it. The self-check waits meanwhile; the
   * node is ONLINE once bound. Rejects when the address stays taken (see reclaim.ts).
   */
  async reclaim(
    r: { listen: string; endpoint: string; peers: PeerView; periodMs: number; timeoutMs: number },
    creds: grpc.ServerCredentials,
    status: NodeStatus,
  ): Promise<void> {
    status.reclaiming = true;
    this.log.info({ endpoint: r.endpoint }, 'address in use: asking the adopter to release it');
    try {
      await reclaimAddress({ ...r, bind: () => this.bind(r.listen, creds) });
    } finally {
      status.reclaiming = false;
    }
    this.log.info({ endpoint: r.endpoint }, 'address reclaimed');
    status.set('ONLINE');
  }

  /**
   * After every bind (adopted addresses too): the caps on connections and calls, and the
   * check of raw session tokens (grpc-js would drop a non-ASCII one unseen).
   */
  guardHeaders(): void {
    if (!this.limits.attach(this.server) && !this.guardWarned) {
      this.guardWarned = true;
      this.log.warn('this grpc-js version hides its HTTP/2 servers: no cap on connections and calls, and a session token that is not printable ASCII is dropped, not refused');
    }
  }
}

/**
 * Binds `address`, first checking with a plain listen that it is free: grpc-js keeps a
 * failed bind and answers every later bind of the same address with the same failure,
 * so a taken address must never reach it. If one does (a race), the next try names the
 * address differently (`ipv4:`/`ipv6:` instead of the default `dns:`).
 */
export async function bindPort(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  const { host, port, ip } = parseHostPort(address);
  if (port !== 0 && (await addressInUse(ip, port))) {
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

/** True when a plain listen on ip:port fails with EADDRINUSE. */
function addressInUse(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE'));
    probe.listen({ host: ip, port, exclusive: true }, () => probe.close(() => resolve(false)));
  });
}
