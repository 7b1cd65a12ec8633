/**
 * A plain grpc-js server with the bank example's handlers (or bench.Echo): the
 * baseline peerbroker is compared with. Prints `plain: node ID listening on HOST:PORT`.
 *
 *   node dist/bench/servers/plain-server.js '{"nodeId":"p1","listen":"127.0.0.1:0","work":0,"service":"bank"}'
 */
import * as grpc from '@grpc/grpc-js';
import { addBank } from '../../examples/bank';
import { echoImplementation, echoService } from './echo-module';

interface PlainConfig {
  nodeId: string;
  listen: string;
  /** Simulated work per bank call, ms (0: a setImmediate). */
  work: number;
  service: 'bank' | 'echo';
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as PlainConfig;
const server = new grpc.Server();
if (cfg.service === 'echo') {
  server.addService(echoService, echoImplementation);
} else {
  addBank(server, cfg.nodeId, cfg.work);
}
server.bindAsync(cfg.listen, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`plain: cannot listen on ${cfg.listen}: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`plain: node ${cfg.nodeId} listening on ${cfg.listen.replace(/:\d+$/, '')}:${port}\n`);
});
const stop = () => server.tryShutdown(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
