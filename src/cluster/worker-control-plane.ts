import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ConnectionOptions } from 'nats';
import type { ClusterKey } from './cluster-key';
import { redactUrl, type NatsAuthOptions } from './nats-auth';
import type { ControlPlane, ControlPlaneHandlers } from './control-plane';
import type { LoadCounters } from './load-counters';
import type { NodeInfo } from './report-builder';
import type { ToMain, ToWorker, WorkerInit } from './worker-protocol';

/** How long a stop waits for the reporter to say goodbye before terminating it. */
const STOP_TIMEOUT_MS = 2_000;

// Under vitest this file runs from src/ as TypeScript; the worker must be the built JS.
function workerScript(): string {
  const here = path.join(__dirname, 'report-worker.js');
  if (fs.existsSync(here)) return here;
  const built = path.resolve(__dirname, '..', '..', 'dist', 'src', 'cluster', 'report-worker.js');
  if (fs.existsSync(built)) return built;
  throw new Error(`peerbroker: reporter thread script not found (run 'npm run build'): ${here}`);
}

/** Reports from a worker thread with its own NATS connection (DESIGN.md: busy is not dead). */
export class WorkerControlPlane implements ControlPlane {
  private worker?: Worker;
  private server = '';

  constructor(
    private readonly servers: string[],
    private readonly counters: LoadCounters,
    private readonly connection?: Partial<ConnectionOptions>,
    /** NATS auth (built into authenticators on the thread) and the key that signs reports. */
    private readonly security: { natsAuth?: NatsAuthOptions; clusterKey?: ClusterKey } = {},
  ) {}

  start(info: NodeInfo, h: ControlPlaneHandlers): Promise<void> {
    const init: WorkerInit = {
      buffer: this.counters.buffer,
      info,
      servers: this.servers,
      connection: this.connection,
      natsAuth: this.security.natsAuth,
      clusterSecrets: this.security.clusterKey?.exportSecrets(),
    };
    const worker = new Worker(workerScript(), { workerData: init });
    this.worker = worker;
    return new Promise((resolve, reject) => {
      worker.on('message', (m: ToMain) => {
        switch (m.t) {
          case 'started':
            this.server = m.server;
            resolve();
            break;
          case 'failed':
            reject(new Error(`control plane: ${m.message}`));
            break;
          case 'report':
            h.onReport(m.nodeId, m.data);
            break;
          case 'config':
            h.onConfig(m.message);
            break;
          case 'config-error':
            h.onConfigError(m.reason, m.drop);
            break;
          case 'status':
            if (m.status === 'reconnected' || m.status === 'connected') this.server = m.detail;
            h.onStatus(m.status, m.detail);
            break;
          case 'error':
            h.onError?.(m.detail);
            break;
          case 'stopped':
            break;
        }
      });
      worker.once('error', (err) => {
        h.onStatus('closed', `reporter thread failed: ${err.message}`);
        reject(err);
      });
    });
  }

  update(info: NodeInfo): void {
    this.send({ t: 'info', info });
  }

  reportNow(): void {
    this.send({ t: 'now' });
  }

  async stop(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.worker = undefined;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, STOP_TIMEOUT_MS);
      worker.on('message', (m: ToMain) => {
        if (m.t === 'stopped') {
          clearTimeout(timer);
          resolve();
        }
      });
      worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      worker.postMessage({ t: 'stop' } satisfies ToWorker);
    });
    await worker.terminate();
  }

  describe(): string {
    return `nats ${this.server || this.servers.map(redactUrl).join(',')} (reporter thread)`;
  }

  private send(m: ToWorker): void {
    this.worker?.postMessage(m);
  }
}
