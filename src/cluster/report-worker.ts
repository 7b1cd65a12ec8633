/**
 * The reporter thread: its own NATS connection, reading the load counters from shared
 * memory, so reports keep flowing while the main event loop is blocked (busy is not dead).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { jittered } from './control-plane';
import { LoadCounters } from './load-counters';
import { NatsExchange } from './nats-exchange';
import { buildReport, type NodeInfo } from './report-builder';
import { encodeReport } from './report-codec';
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

const exchange = new NatsExchange({
  servers: init.servers,
  cluster: info.cluster,
  name: `peerbroker-${info.cluster}-${info.nodeId}`,
  connection: { noEcho: true, ...init.connection },
});
exchange.onStatus = (status, detail) => post({ t: 'status', status, detail });

function publish(): void {
  exchange.publish(info.nodeId, encodeReport(buildReport(info, counters, ++seq, Date.now())));
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

exchange
  .start((nodeId, data) => post({ t: 'report', nodeId, data }))
  .then(async () => {
    const nc = exchange.connection();
    if (nc) {
      watcher = new ConfigWatcher(
        nc,
        info.cluster,
        (message) => post({ t: 'config', message }),
        (reason) => post({ t: 'config-error', reason }),
      );
      await watcher.start();
    }
    publish();
    schedule();
    post({ t: 'started', server: exchange.currentServer() ?? '' });
  })
  .catch((err: Error) => post({ t: 'failed', message: err.message }));
