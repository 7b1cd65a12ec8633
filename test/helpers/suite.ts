import { afterAll, beforeAll } from 'vitest';
import { cleanupBrokers } from './brokers';
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
