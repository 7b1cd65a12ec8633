/**
 * One broker in its own process, built in code rather than by the CLI: for what the
 * CLI cannot set, such as a fixed extra load meter (a node that always redirects).
 * Prints the CLI's line `peerbroker: node ID listening on HOST:PORT`.
 *
 *   node dist/bench/servers/broker-host.js '{"broker":{...BrokerOptions},"fixedLoad":1,"work":0}'
 */
import { addBank } from '../../examples/bank';
import { Broker, type BrokerOptions } from '../../src/broker';
import { createLogger } from '../../src/log';

interface HostConfig {
  broker: BrokerOptions;
  /** A meter that always reads this load (0..1): the node looks busy whatever it runs. */
  fixedLoad?: number;
  /** Simulated work per bank call, ms. */
  work: number;
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as HostConfig;
  const meters = cfg.fixedLoad === undefined ? [] : [{ name: 'fixed', sample: () => cfg.fixedLoad! }];
  const broker = new Broker({ ...cfg.broker, meters, logger: createLogger({ level: 'warn' }) });
  addBank(broker, broker.nodeId, cfg.work);
  await broker.start();
  if (broker.httpUrl) process.stdout.write(`peerbroker: node ${broker.nodeId} serves HTTP on ${broker.httpUrl}\n`);
  process.stdout.write(`peerbroker: node ${broker.nodeId} listening on ${broker.endpoint}\n`);
  const stop = () => void broker.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: Error) => {
  process.stderr.write(`broker-host: ${err.stack ?? err}\n`);
  process.exit(1);
});
