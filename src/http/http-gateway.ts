import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { status, type Metadata, type MethodDefinition } from '@grpc/grpc-js';
import type { PeerView } from '../cluster';
import type { Logger } from '../log';
import { parseHostPort } from '../wire';
import { ClusterFeed, type ClusterSnapshot, type SelfSample } from './cluster-feed';
import { errorBody } from './connect-errors';
import { methodCodec } from './json-codec';
import { HEADERS_TIMEOUT_MS, KEEP_ALIVE_TIMEOUT_MS, MAX_EVENT_BACKLOG_BYTES, MAX_EVENT_STREAMS, MAX_HEADER_BYTES, REQUEST_TIMEOUT_MS } from './limits';
import { PAGE_CSP, PAGE_HTML } from './page';
import { answerError, serveRpc, type RpcDeps, type RpcRoute } from './rpc-call';

type Method = MethodDefinition<unknown, unknown>;

/** What the HTTP listener needs of its broker. */
export interface HttpGatewayOptions {
  nodeId: string;
  cluster: string;
  /** `host:port` to listen on. */
  listen: string;
  /** `host:port` peers and browsers are told (default: the bound address). */
  advertise?: string;
  maxBodyBytes: number;
  /** Origins besides the cluster's own HTTP URLs whose pages may call (CORS); '*' for any. */
  allowOrigins: readonly string[];
  /** The node's TLS certificate and key (and CA: clients must present a certificate it signed). */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
  log: Logger;
  peers: PeerView;
  /** This node now, for the page. */
  self(): SelfSample;
  threshold(): number;
  /** The node's caps on connections and open calls, shared with the gRPC server. */
  limits?: ListenerLimits;
  /** The response headers the gate sends with every accepted call (one object, never written). */
  sharedHeaders?: Metadata;
}

/** The node's caps on connections and open calls (broker/connection-limits.ts) as the listener uses them. */
export interface ListenerLimits {
  /** Counts the listener's connections against the node's `maxConnections`. */
  attachNetServer(server: NetServer): void;
  /** Counts one request until its answer closes; false when the node holds `maxStreams` calls. */
  openHttpCall(res: http.ServerResponse): boolean;
  /** What a call refused at `maxStreams` is told. */
  readonly streamRefusal: string;
}

// Headers a page's script may read on a cross-origin answer.
const EXPOSED = 'peerbroker-node, peerbroker-session, peerbroker-reason, peerbroker-location-node, location';
/** How long a stop waits for calls in progress before closing their connections, ms. */
const STOP_GRACE_MS = 2_000;

/**
 * The HTTP side of a node: every hosted unary and server-streaming method as
 * `POST /<package>.<Service>/<Method>` (Connect's shape, proto3 JSON), through the same
 * gate as gRPC calls; redirects as `307`; and the live cluster page at `/`.
 */
export class HttpGateway {
  private readonly routes = new Map<string, RpcRoute>();
  private readonly feed: ClusterFeed;
  private readonly streams = new Set<http.ServerResponse>();
  private readonly deps: RpcDeps;
  private server?: http.Server;
  private boundUrl = '';
  private unsubscribe?: () => void;

  constructor(private readonly o: HttpGatewayOptions) {
    this.feed = new ClusterFeed(o.cluster, o.peers, o.self, o.threshold);
    this.deps = {
      maxBodyBytes: o.maxBodyBytes,
      httpUrlOf: (id) => o.peers.get(id)?.httpUrl || undefined,
      sharedHeaders: o.sharedHeaders,
      sharedHttpHeaders: o.sharedHeaders?.toHttp2Headers() ?? {},
    };
  }

  /** Base URL browsers and peers use (`http://host:port`); known after start. */
  get url(): string {
    return this.boundUrl;
  }

  /** Serves `method` over HTTP with its gate-wrapped handler. */
  addMethod(method: Method, handler: RpcRoute['handler']): void {
    this.routes.set(method.path, { method, handler, codec: methodCodec(method) });
  }

  /** Binds the listener; resolves with the base URL. */
  async start(): Promise<string> {
    const limits = { maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS };
    const t = this.o.tls;
    const server = t
      ? https.createServer({ ...limits, cert: t.cert, key: t.key, ca: t.ca, requestCert: t.ca !== undefined, rejectUnauthorized: t.ca !== undefined })
      : http.createServer(limits);
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res));
    this.o.limits?.attachNetServer(server);
    const { host, ip, port } = parseHostPort(this.o.listen);
    await new Promise<void>((resolve, reject) => {
      const failed = (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen for HTTP on '${this.o.listen}': ${err.code ?? err.message}`));
      server.once('error', failed);
      server.listen(port, ip, () => {
        server.off('error', failed);
        resolve();
      });
    });
    // Later errors of the server itself (not of a connection: those go to 'clientError') are told, not thrown.
    server.on('error', (err: Error) => this.o.log.error({ err: err.message }, 'HTTP listener error'));
    this.server = server;
    const bound = (server.address() as AddressInfo).port;
    this.boundUrl = `${t ? 'https' : 'http'}://${this.o.advertise ?? `${host}:${bound}`}`;
    return this.boundUrl;
  }

  /** Stops listening: event streams end, calls in progress get a moment to finish, then every connection closes. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.feed.stop();
    for (const s of this.streams) s.end();
    this.streams.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const force = setTimeout(() => server.closeAllConnections(), STOP_GRACE_MS);
    force.unref();
    await closed;
    clearTimeout(force);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    // The path as sent (no URL object per call): routes are exact paths. An absolute-form
    // request line (`POST http://host/path`) is cut to its path and query.
    let raw = req.url ?? '/';
    if (raw.charCodeAt(0) !== 47) {
      const u = URL.canParse(raw) ? new URL(raw) : undefined;
      raw = u ? u.pathname + u.search : '/';
    }
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const base = this.baseHeaders(req);
    const limits = this.o.limits;
    // Every request is an open call until its answer closes, as every HTTP/2 stream is on gRPC.
    if (limits && !limits.openHttpCall(res)) {
      answerError(res, base, 429, status.RESOURCE_EXHAUSTED, limits.streamRefusal);
      if (!req.complete) res.once('finish', () => req.destroy());
      return;
    }
    const get = req.method === 'GET' || req.method === 'HEAD';
    if ((path === '/' || path === '/index.html') && get) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': PAGE_CSP, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      return void res.end(req.method === 'HEAD' ? undefined : PAGE_HTML);
    }
    if (path === '/favicon.ico' && get) return void res.writeHead(204).end();
    if (path === '/peerbroker/events' && get) return this.openEvents(req, res);
    if (path === '/peerbroker/cluster' && get) {
      res.writeHead(200, { ...base, 'content-type': 'application/json', 'cache-control': 'no-store' });
      return void res.end(JSON.stringify(this.feed.snapshot()));
    }
    const route = this.routes.get(path);
    if (!route) {
      const services = [...new Set([...this.routes.keys()].map((p) => p.split('/')[1]))].join(', ');
      return answerError(res, base, 404, status.UNIMPLEMENTED, `peerbroker: no method '${path}' on node '${this.o.nodeId}' (it serves ${services || 'no service'} over HTTP; the page is at /)`);
    }
    if (req.method === 'OPTIONS') return this.preflight(req, res, base);
    if (req.method !== 'POST') {
      return answerError(res, base, 405, status.UNIMPLEMENTED, `peerbroker: '${path}' takes POST, not ${req.method}`, { allow: 'POST, OPTIONS' });
    }
    serveRpc(req, res, q < 0 ? '' : raw.slice(q), route, this.deps, base).catch((err: Error) => {
      this.o.log.warn({ err: err.message, path }, 'HTTP call failed inside the node');
      if (!res.headersSent) answerError(res, base, 500, status.INTERNAL, `peerbroker: ${err.message}`);
      else res.destroy();
    });
  }

  // Pages served by the cluster's own nodes may call any node: a redirect makes a same-origin call cross-origin.
  private allowed(origin: string): boolean {
    const a = this.o.allowOrigins;
    if (a.includes('*') || a.includes(origin) || origin === this.boundUrl) return true;
    const peers = this.o.peers.peers;
    for (let i = 0; i < peers.length; i++) if (peers[i].httpUrl === origin) return true;
    return false;
  }

  private baseHeaders(req: http.IncomingMessage): http.OutgoingHttpHeaders {
    const origin = req.headers.origin;
    const h: http.OutgoingHttpHeaders = { 'peerbroker-node': this.o.nodeId };
    if (origin !== undefined && this.allowed(origin)) {
      h['access-control-allow-origin'] = origin;
      h['access-control-expose-headers'] = EXPOSED;
      h.vary = 'Origin';
    }
    return h;
  }

  private preflight(req: http.IncomingMessage, res: http.ServerResponse, base: http.OutgoingHttpHeaders): void {
    if (!base['access-control-allow-origin']) {
      return answerError(res, base, 403, status.PERMISSION_DENIED, `peerbroker: origin '${req.headers.origin ?? ''}' may not call this node from a browser (--http-allow-origins)`);
    }
    res.writeHead(204, {
      ...base,
      'access-control-allow-methods': 'POST',
      'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'content-type',
      'access-control-max-age': '600',
    });
    res.end();
  }

  private openEvents(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.streams.size >= MAX_EVENT_STREAMS) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' });
      return void res.end(errorBody(status.UNAVAILABLE, `peerbroker: ${MAX_EVENT_STREAMS} cluster pages are open on this node already; try again later`));
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write(`retry: 2000\n\n${event(this.feed.snapshot())}`);
    req.socket.setNoDelay(true);
    // The feed samples only while a page watches.
    if (this.streams.size === 0) this.unsubscribe = this.feed.subscribe((s) => this.broadcast(s));
    this.streams.add(res);
    res.once('close', () => this.closeEvents(res));
  }

  private closeEvents(res: http.ServerResponse): void {
    if (!this.streams.delete(res) || this.streams.size > 0) return;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private broadcast(s: ClusterSnapshot): void {
    if (this.streams.size === 0) return;
    const text = event(s);
    for (const res of this.streams) {
      // A page that reads nothing is closed rather than buffered for; its EventSource reconnects.
      if (res.writableLength > MAX_EVENT_BACKLOG_BYTES) res.destroy();
      else res.write(text);
    }
  }
}

function event(s: ClusterSnapshot): string {
  return `event: snapshot\ndata: ${JSON.stringify(s)}\n\n`;
}
