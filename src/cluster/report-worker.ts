/**
 * The reporter thread: its own NATS connection, reading the load counters from shared
 * memory, so reports keep flowing while the main event loop is blocked (busy is not dead).
 * A LocalControlPlane whose events go to the main thread (worker-protocol.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ClusterKey } from './cluster-key';
import { LocalControlPlane } from './control-plane';
import { LoadCounters } from './load-counters';
import { NatsExchange } from './nats-exchange';
import type { ToMain, ToWorker, WorkerInit } from './worker-protocol';

const port = parentPort!;
const init = workerData as WorkerInit;
const counters = new LoadCounters(init.buffer);
const key = init.clusterSecrets ? ClusterKey.fromSecrets(init.clusterSecrets) : undefined;
const post = (m: ToMain) => port.postMessage(m);
let plane: LocalControlPlane | undefined;

port.on('message', (m: ToWorker) => {
  if (m.t === 'info') {
    plane?.update(m.info);
  } else if (m.t === 'now') {
    plane?.reportNow();
  } else if (m.t === 'stop') {
    void Promise.resolve(plane?.stop())
      .catch(() => {})
      .finally(() => {
        post({ t: 'stopped' });
        port.close();
      });
  }
});

// Runs synchronously up to the connection, so `plane` is set before any message is handled.
(async () => {
  // Authenticators are functions, which do not cross threads: built here from names and paths.
  const exchange = NatsExchange.forNode({
    servers: init.servers,
    cluster: init.info.cluster,
    nodeId: init.info.nodeId,
    connection: init.connection,
    natsAuth: init.natsAuth,
  });
  plane = new LocalControlPlane(exchange, counters, key, true);
  await plane.start(init.info, {
    // Read, checked and dropped here; the main thread gets one batch per tick at most.
    onReports: (batch) => post({ t: 'reports', batch }),
    knownPeers: () => init.known,
    onConfig: (message) => post({ t: 'config', message }),
    onConfigError: (reason, drop) => post({ t: 'config-error', reason, drop }),
    onStatus: (status, detail) => post({ t: 'status', status, detail }),
    onError: (detail) => post({ t: 'error', detail }),
  });
  post({ t: 'started', server: exchange.currentServer() ?? '' });
})().catch((err: Error) => post({ t: 'failed', message: err.message }));
