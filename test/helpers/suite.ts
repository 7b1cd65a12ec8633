import { afterAll, afterEach, beforeAll } from 'vitest';
import { cleanupBrokers, startBrokerProcesses, type BrokerProcess, type BrokerProcessOptions } from './brokers';
import { startNatsServer, type NatsServerHandle, type NatsServerOptions } from './nats';
import { killAllTracked } from './processes';

/**
 * One nats-server for the tests of the enclosing describe: started before them; after them,
 * the in-process brokers and clients are stopped, the server too, and every tracked process
 * killed. Returns a getter, since the server exists only once the hook has run.
 */
export function natsForSuite(opts: NatsServerOptions = {}): () => NatsServerHandle {
  let nats: NatsServerHandle | undefined;
  beforeAll(async () => {
    nats = await startNatsServer(opts);
  });
  afterAll(async () => {
    await cleanupBrokers();
    await nats?.stop();
    await killAllTracked();
  });
  return () => {
    if (!nats) throw new Error('natsForSuite: the server is not started yet (use it inside a hook or a test)');
    return nats;
  };
}

/**
 * Broker processes for the tests of the enclosing describe (call it after `natsForSuite()`):
 * one per id, started together before the tests with `common()` (read then, so it may use
 * the suite's NATS server) plus `each[id]`, all seeing each other ONLINE; their output
 * printed after a test that failed; killed (SIGKILL) after the tests. Returns a getter.
 */
export function brokerProcessesForSuite(
  nodeIds: string[],
  common: () => Omit<BrokerProcessOptions, 'nodeId'> | Promise<Omit<BrokerProcessOptions, 'nodeId'>>,
  each: Record<string, Partial<BrokerProcessOptions>> = {},
): () => BrokerProcess[] {
  let nodes: BrokerProcess[] | undefined;
  beforeAll(async () => {
    nodes = await startBrokerProcesses(nodeIds, await common(), each);
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') for (const b of nodes ?? []) console.log(`--- ${b.nodeId} ---\n${b.output()}`);
  });
  afterAll(async () => {
    await Promise.all((nodes ?? []).map((b) => b.kill9()));
  });
  return () => {
    if (!nodes) throw new Error('brokerProcessesForSuite: the processes are not started yet (use them inside a hook or a test)');
    return nodes;
  };
}
