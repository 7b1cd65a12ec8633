import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { parseHostPort } from '../wire';

/** The Prometheus endpoint of a broker: `GET /metrics` on its own HTTP port. */
export interface MetricsServer {
  /** `host:port` it listens on (the port chosen when 0 was asked). */
  readonly endpoint: string;
  /** Stops listening and closes its connections. */
  close(): Promise<void>;
}

/** Serves `registry` at `http://<listen>/metrics`; rejects naming the address when it cannot listen. */
export function serveMetrics(listen: string, registry: Registry): Promise<MetricsServer> {
  const { host, port, ip } = parseHostPort(listen);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('peerbroker: only GET /metrics here\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : body),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`peerbroker: metrics failed: ${err.message}\n`),
    );
  });
  // Scrapers keep their connection; it must not keep a stopping process alive.
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen on metrics-listen '${listen}': ${err.code ?? err.message}`)));
    server.listen({ host: ip, port }, () => {
      const bound = (server.address() as AddressInfo).port;
      resolve({
        endpoint: `${host}:${bound}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
