/**
 * The reporter thread: its own NATS connection, reading the load counters from shared
 * memory, so reports keep flowing while the main event loop is blocked (busy is not dead).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ConnectionOptions } from 'nats';
import { ClusterKey } from './cluster-key';
import { natsConnectionOptions } from './nats-auth';
import { LoadCounters } from './load-counters';
import { NatsExchange } from './nats-exchange';
import { ReportLoop } from './report-loop';
import { ConfigWatcher } from './runtime-config';
import type { ToMain, ToWorker, WorkerInit } from './worker-protocol';

const port = parentPort!;
const init = workerData as WorkerInit;
const counters = new LoadCounters(init.buffer);
const info = init.info;
let watcher: ConfigWatcher | undefined;
const post = (m: ToMain) => port.postMessage(m);
const key = init.clusterSecrets ? ClusterKey.fromSecrets(init.clusterSecrets) : undefined;
// Authenticators are functions, which do not cross threads: built here from names and paths.
let auth: Partial<ConnectionOptions> = {};
let authError: string | undefined;
try {
  auth = natsConnectionOptions(init.natsAuth);
} catch (err) {
  authError = (err as Error).message;
}

const exchange = new NatsExchange({
  servers: init.servers,
  cluster: info.cluster,
  name: `peerbroker-${info.cluster}-${info.nodeId}`,
  connection: { noEcho: true, ...init.connection, ...auth },
});
exchange.onStatus = (status, detail) => post({ t: 'status', status, detail });
exchange.onError = (detail) => post({ t: 'error', detail });

const loop = new ReportLoop(exchange, counters, info, key, false);

port.on('message', (m: ToWorker) => {
  if (m.t === 'info') {
    loop.update(m.info);
  } else if (m.t === 'now') {
    loop.publish();
  } else if (m.t === 'stop') {
    watcher?.stop();
    loop.stop();
    void exchange
      .flush()
      .then(() => exchange.close())
      .catch(() => {})
      .finally(() => {
        post({ t: 'stopped' });
        port.close();
      });
  }
});

(authError ? Promise.reject(new Error(authError)) : exchange.start((nodeId, data) => post({ t: 'report', nodeId, data })))
  .then(async () => {
    const nc = exchange.connection();
    if (nc) {
      watcher = new ConfigWatcher(
        nc,
        info.cluster,
        (message) => post({ t: 'config', message }),
        (reason, drop) => post({ t: 'config-error', reason, drop }),
        key,
      );
      await watcher.start();
    }
    loop.start();
    post({ t: 'started', server: exchange.currentServer() ?? '' });
  })
  .catch((err: Error) => post({ t: 'failed', message: err.message }));
