import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ConnectionOptions } from 'nats';
import type { ClusterKey } from './cluster-key';
import { redactUrl, type NatsAuthOptions } from './nats-auth';
import { LocalControlPlane, type ControlPlane, type ControlPlaneHandlers } from './control-plane';
import { NatsExchange } from './nats-exchange';
import type { LoadCounters } from './load-counters';
import type { NodeInfo } from './report-builder';
import type { ExchangeStatus } from './exchange';
import type { ToMain, ToWorker, WorkerInit } from './worker-protocol';

/** How long a stop waits for the reporter to say goodbye before terminating it. */
const STOP_TIMEOUT_MS = 2_000;
/** Deaths of the reporter thread within `RESTART_WINDOW_MS` that are met with a restart; one more and the main thread reports. */
export const MAX_REPORTER_RESTARTS = 3;
/** The window over which reporter deaths are counted, ms. */
const RESTART_WINDOW_MS = 60_000;

// Under vitest this file runs from src/ as TypeScript; the worker must be the built JS.
function workerScript(): string {
  const here = path.join(__dirname, 'report-worker.js');
  if (fs.existsSync(here)) return here;
  const built = path.resolve(__dirname, '..', '..', 'dist', 'src', 'cluster', 'report-worker.js');
  if (fs.existsSync(built)) return built;
  throw new Error(`peerbroker: reporter thread script not found (run 'npm run build'): ${here}`);
}

/**
 * Reports from a worker thread with its own NATS connection (docs/design.md: busy is not dead),
 * supervised: a reporter thread that dies is restarted at once, since peers would
 * otherwise see a serving node fall silent and adopt its address. After
 * `MAX_REPORTER_RESTARTS` deaths within a minute the main thread reports instead; if
 * that cannot start either, `onReporter(..., fatal)` tells the broker, which drains.
 */
export class WorkerControlPlane implements ControlPlane {
  private worker?: Worker;
  private fallback?: LocalControlPlane;
  private server = '';
  private info?: NodeInfo;
  private handlers?: ControlPlaneHandlers;
  private stopping = false;
  /** When the reporter thread died (monotonic ms), within the last window. */
  private deaths: number[] = [];

  constructor(
    private readonly servers: string[],
    private readonly counters: LoadCounters,
    private readonly connection?: Partial<ConnectionOptions>,
    /** NATS auth (built into authenticators on the thread) and the key that signs reports. */
    private readonly security: { natsAuth?: NatsAuthOptions; clusterKey?: ClusterKey } = {},
  ) {}

  start(info: NodeInfo, h: ControlPlaneHandlers): Promise<void> {
    this.info = info;
    this.handlers = h;
    return this.spawn(true);
  }

  // The first start fails the broker's start when the thread cannot connect; a restart
  // that fails counts as one more death.
  private spawn(first: boolean): Promise<void> {
    const h = this.handlers!;
    const init: WorkerInit = {
      buffer: this.counters.buffer,
      info: this.info!,
      servers: this.servers,
      connection: this.connection,
      natsAuth: this.security.natsAuth,
      clusterSecrets: this.security.clusterKey?.exportSecrets(),
      known: h.knownPeers?.() ?? [],
    };
    const worker = new Worker(workerScript(), { workerData: init });
    this.worker = worker;
    let started = false;
    let error: string | undefined;
    return new Promise((resolve, reject) => {
      worker.on('message', (m: ToMain) => {
        if (worker !== this.worker) return;
        switch (m.t) {
          case 'started':
            started = true;
            this.server = m.server;
            resolve();
            break;
          case 'failed':
            error = m.message;
            if (first) reject(new Error(`control plane: ${m.message}`));
            void worker.terminate();
            break;
          case 'reports':
            h.onReports(m.batch);
            break;
          case 'config':
            h.onConfig(m.message);
            break;
          case 'config-error':
            h.onConfigError(m.reason, m.drop);
            break;
          case 'status':
            if (m.status === 'reconnected' || m.status === 'connected') this.server = m.detail;
            h.onStatus(first ? m.status : afterRestart(m.status), m.detail);
            break;
          case 'error':
            h.onError?.(m.detail);
            break;
          case 'stopped':
            break;
        }
      });
      worker.on('error', (err) => {
        error = err.message;
      });
      worker.once('exit', (code) => {
        // stop() came before the first start ended: that start fails (else it would never end).
        if (first && !started && this.stopping) return reject(new Error('control plane: stopped while it started'));
        if (worker !== this.worker || this.stopping) return;
        this.worker = undefined;
        const why = error ?? `exited with code ${code}`;
        if (first && !started) {
          h.onStatus('closed', `reporter thread failed: ${why}`);
          reject(new Error(`control plane: reporter thread failed: ${why}`));
          return;
        }
        this.died(why);
      });
    });
  }

  private died(why: string): void {
    const h = this.handlers!;
    const now = performance.now();
    this.deaths = this.deaths.filter((t) => now - t < RESTART_WINDOW_MS);
    this.deaths.push(now);
    // Deaf until a reporter runs again: silent peers prove nothing meanwhile.
    h.onStatus('disconnected', `reporter thread died: ${why}`);
    if (this.deaths.length <= MAX_REPORTER_RESTARTS) {
      h.onReporter?.(`reporter thread died (${why}); restarted`, false);
      void this.spawn(false);
      return;
    }
    h.onReporter?.(`reporter thread died ${this.deaths.length} times within ${RESTART_WINDOW_MS / 1000} s (${why}); reporting from the main thread`, false);
    const info = this.info!;
    const exchange = NatsExchange.forNode({
      servers: this.servers,
      cluster: info.cluster,
      nodeId: info.nodeId,
      connection: this.connection,
      natsAuth: this.security.natsAuth,
    });
    const plane = new LocalControlPlane(exchange, this.counters, this.security.clusterKey);
    this.fallback = plane;
    plane.start(info, { ...h, onStatus: (st, detail) => h.onStatus(afterRestart(st), detail) }).catch((err: Error) => h.onReporter?.(`cannot report from the main thread either: ${err.message}`, true));
  }

  update(info: NodeInfo): void {
    this.info = info;
    if (this.fallback) this.fallback.update(info);
    else this.send({ t: 'info', info });
  }

  reportNow(): void {
    if (this.fallback) this.fallback.reportNow();
    else this.send({ t: 'now' });
  }

  /** Test hook: ends the reporter thread as a crash would; it is restarted like after any death. */
  async terminateReporter(): Promise<void> {
    await this.worker?.terminate();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.fallback?.stop();
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
    if (this.fallback) return `${this.fallback.describe()} (main thread: the reporter thread kept dying)`;
    return `nats ${this.server || this.servers.map(redactUrl).join(',')} (reporter thread)`;
  }

  private send(m: ToWorker): void {
    this.worker?.postMessage(m);
  }
}

// A reporter started again connects afresh; to the broker that is the control plane coming
// back (it then looks again at peers that went silent while nothing could hear them).
function afterRestart(status: ExchangeStatus): ExchangeStatus {
  return status === 'connected' ? 'reconnected' : status;
}
