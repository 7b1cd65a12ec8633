import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { status, type Server } from '@grpc/grpc-js';
import type { Logger, RateLimitedLog } from '../log';
import { markNotPrintable } from './session-header-guard';
import type { Resource } from './resource-pressure';

type StreamListener = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, raw: string[]) => void;

/**
 * Holds the node's connections and open calls under its caps, and counts them (for the
 * health check and the metrics): those of the gRPC server, on grpc-js's HTTP/2 servers
 * (`Server.http2Servers`, private: grpc-js has no hook for either), after every bind; and
 * those of the HTTP listener (`attachNetServer`, `openHttpCall`).
 *
 * - Connections: each server's own `maxConnections` (Node closes a connection past it
 *   before anything is read), set so that all of them together stay within `maxConnections`;
 *   with more than one address bound, each may take one past that while it holds none.
 * - Calls: every HTTP/2 stream is counted until it closes, also a request that never ends
 *   (which grpc-js holds without calling any handler). Past `maxStreams` a new one is answered
 *   at once, trailers-only, with RESOURCE_EXHAUSTED: nothing ran, nothing is held. Every
 *   HTTP/1.1 request counts the same way, until its answer closes.
 * - Session tokens that are not printable ASCII are marked for the gate (session-header-guard.ts).
 */
export class ConnectionLimits {
  /** Connections open now. */
  connections = 0;
  /** Calls (HTTP/2 streams) open now. */
  streams = 0;
  /** Connections closed at once because the node held `maxConnections`. */
  connectionsRefused = 0;
  /** Calls refused because the node held `maxStreams`. */
  streamsRefused = 0;
  private readonly servers = new Map<net.Server, number>();
  /** The refusal's text, as the HTTP listener sends it. */
  readonly streamRefusal: string;
  private readonly refusal: string;
  // Shared by every counted stream and HTTP call: nothing is made per call.
  private readonly closed = () => {
    this.streams--;
  };

  constructor(
    nodeId: string,
    readonly maxConnections: number,
    readonly maxStreams: number,
    private readonly log?: Logger,
    /** Refusals are logged at warn, at most every 10 s for each cap. */
    private readonly rateLimit?: RateLimitedLog,
  ) {
    this.streamRefusal = `peerbroker: node '${nodeId}' has ${maxStreams} calls open, its limit (max-streams); the call did not run`;
    // grpc-message is percent-encoded (gRPC over HTTP/2).
    this.refusal = encodeURIComponent(this.streamRefusal);
  }

  /** Hooks the HTTP/2 servers of `server` not hooked yet; false when this grpc-js hides them. */
  attach(server: Server): boolean {
    const http2Servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
    if (!(http2Servers instanceof Map)) return false;
    for (const s of http2Servers.keys() as IterableIterator<net.Server>) {
      if (this.servers.has(s)) continue;
      this.hookConnections(s);
      this.wrapStreams(s);
    }
    this.spread();
    return true;
  }

  /** Counts the connections of `server` (the HTTP listener) against `maxConnections`, with the gRPC server's. */
  attachNetServer(server: net.Server): void {
    if (this.servers.has(server)) return;
    this.hookConnections(server);
    this.spread();
  }

  /**
   * Counts an HTTP/1.1 call (one request) until `res` closes; false when `maxStreams` calls
   * are open already: then it is refused (`streamRefusal`) and not counted.
   */
  openHttpCall(res: { on(event: 'close', fn: () => void): unknown }): boolean {
    if (this.streams >= this.maxStreams) {
      this.countRefusal();
      return false;
    }
    this.streams++;
    res.on('close', this.closed);
    return true;
  }

  /** The resources the health check watches. */
  resources(): Resource[] {
    return [
      { name: 'connections', option: 'max-connections', used: () => this.connections, limit: () => this.maxConnections },
      { name: 'open calls', option: 'max-streams', used: () => this.streams, limit: () => this.maxStreams },
    ];
  }

  private hookConnections(s: net.Server): void {
    this.servers.set(s, 0);
    s.on('connection', (socket: net.Socket) => this.opened(s, socket));
    s.on('drop', () => {
      this.connectionsRefused++;
      this.logRefusal('connection refused', `${this.maxConnections} connections open (max-connections)`);
    });
    s.once('close', () => this.servers.delete(s));
  }

  private opened(s: net.Server, socket: net.Socket): void {
    this.connections++;
    this.servers.set(s, (this.servers.get(s) ?? 0) + 1);
    socket.once('close', () => {
      this.connections--;
      const own = this.servers.get(s);
      if (own !== undefined) this.servers.set(s, own - 1);
      this.spread();
    });
    this.spread();
  }

  // Each server may take what it holds plus the room left to the node. Node reads 0 as "no
  // limit" (and some versions as "none"), so a server holding none keeps room for one.
  private spread(): void {
    const room = Math.max(0, this.maxConnections - this.connections);
    for (const [s, own] of this.servers) s.maxConnections = Math.max(1, own + room);
  }

  // grpc-js's listener runs only for calls let in: a refused one must not reach it at all.
  private wrapStreams(s: net.Server): void {
    const inner = s.listeners('stream') as StreamListener[];
    s.removeAllListeners('stream');
    const closed = this.closed;
    s.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, raw: string[]) => {
      markNotPrintable(headers);
      if (this.streams >= this.maxStreams) return this.refuse(stream);
      this.streams++;
      // A stream closes once: `on` spares the wrapper `once` would make for every call.
      stream.on('close', closed);
      for (let i = 0; i < inner.length; i++) inner[i].call(s, stream, headers, flags, raw);
    });
  }

  private countRefusal(): void {
    this.streamsRefused++;
    this.logRefusal('call refused', `${this.maxStreams} calls open (max-streams)`);
  }

  private logRefusal(what: string, why: string): void {
    this.rateLimit?.maybe(what, performance.now(), (suppressed) => this.log?.warn({ suppressed }, `${what}: ${why}`));
  }

  private refuse(stream: http2.ServerHttp2Stream): void {
    this.countRefusal();
    stream.on('error', () => {});
    try {
      stream.respond(
        {
          [http2.constants.HTTP2_HEADER_STATUS]: 200,
          [http2.constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc+proto',
          'grpc-status': String(status.RESOURCE_EXHAUSTED),
          'grpc-message': this.refusal,
        },
        { endStream: true },
      );
    } catch {
      stream.destroy(); // the client reset it meanwhile
    }
  }
}
