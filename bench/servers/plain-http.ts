/**
 * The baseline of the HTTP scenario: a plain `node:http` JSON server running the bank
 * example's own `Securities.GetQuote` handler, with no broker in the way (no decision,
 * no proto3 JSON mapping: JSON.parse in, JSON.stringify out). Prints
 * `plain-http: node ID listening on http://HOST:PORT`.
 *
 *   node dist/bench/servers/plain-http.js '{"nodeId":"p1","work":0}'
 */
import * as http from 'node:http';
import type * as grpc from '@grpc/grpc-js';
import { bankImplementations } from '../../examples/bank';

const cfg = JSON.parse(process.argv[2] ?? '{}') as { nodeId: string; work: number };
const getQuote = bankImplementations(cfg.nodeId, cfg.work).securities.GetQuote as (call: { request: unknown; getPath(): string }, cb: grpc.sendUnaryData<unknown>) => void;

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let request: unknown;
    try {
      request = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"code":"invalid_argument","message":"not JSON"}');
      return;
    }
    getQuote({ request, getPath: () => '/bank.Securities/GetQuote' }, (err, value) => {
      const body = JSON.stringify(err ? { code: 'unknown', message: err.details ?? 'failed' } : value);
      res.writeHead(err ? 500 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    });
  });
});
server.keepAliveTimeout = 5_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`plain-http: node ${cfg.nodeId} listening on http://127.0.0.1:${port}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
