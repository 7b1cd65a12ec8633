/**
 * The reporter thread: its own NATS connection, reading the load counters from shared
 * memory, so reports keep flowing while the main event loop is blocked (busy is not dead).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ConnectionOptions } from 'nats';
import { ClusterKey } from './cluster-key';
import { jittered } from './control-plane';
import { natsConnectionOptions } from './nats-auth';
import { LoadCounters } from './load-counters';
import { NatsExchange } from './nats-exchange';
import { buildReport, type NodeInfo } from './report-builder';
import { encodeReport } from './report-codec';
import { sealReport } from './report-signing';
import { ConfigWatcher } from './runtime-config';
import type { ToMain, ToWorker, WorkerInit } from './worker-protocol';

const port = parentPort!;
const init = workerData as WorkerInit;
const counters = new LoadCounters(init.buffer);
let info: NodeInfo = init.info;
let seq = 0;
let timer: NodeJS.Timeout | undefined;
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

function publish(): void {
  const bytes = encodeReport(buildReport(info, counters, ++seq, Date.now()));
  exchange.publish(info.nodeId, key ? sealReport(bytes, key) : bytes);
}

function schedule(): void {
  timer = setTimeout(() => {
    publish();
    schedule();
  }, jittered(info.periodMs));
}

port.on('message', (m: ToWorker) => {
  if (m.t === 'info') {
    const periodChanged = m.info.periodMs !== info.periodMs;
    info = m.info;
    if (periodChanged && timer) {
      clearTimeout(timer);
      // Peers judge silence by the period of the last report: tell them the new one at once,
      // or a longer period makes this node look off-line until its next report.
      publish();
      schedule();
    }
  } else if (m.t === 'now') {
    publish();
  } else if (m.t === 'stop') {
    clearTimeout(timer);
    watcher?.stop();
    publish();
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
    publish();
    schedule();
    post({ t: 'started', server: exchange.currentServer() ?? '' });
  })
  .catch((err: Error) => post({ t: 'failed', message: err.message }));
