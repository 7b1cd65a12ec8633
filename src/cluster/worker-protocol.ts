import type { ConnectionOptions } from 'nats';
import type { NatsAuthOptions } from './nats-auth';
import type { ExchangeStatus } from './exchange';
import type { NodeInfo } from './report-builder';
import type { ReportBatch } from './report-filter';
import type { ConfigDropReason, ConfigMessage } from './runtime-config';

/** What the reporter thread is started with (structured-cloneable). */
export interface WorkerInit {
  buffer: SharedArrayBuffer;
  info: NodeInfo;
  servers: string[];
  connection?: Partial<ConnectionOptions>;
  /** How to authenticate to NATS; the thread builds the authenticators (functions do not clone). */
  natsAuth?: NatsAuthOptions;
  /** The cluster key's secrets (first signs); reports are signed when set. */
  clusterSecrets?: Uint8Array[];
  /** Node ids the main thread knows (a restarted thread does not take them for newcomers). */
  known: string[];
}

/** Main thread → reporter thread. */
export type ToWorker = { t: 'info'; info: NodeInfo } | { t: 'now' } | { t: 'stop' };

/** Reporter thread → main thread. */
export type ToMain =
  | { t: 'started'; server: string }
  | { t: 'failed'; message: string }
  | { t: 'reports'; batch: ReportBatch }
  | { t: 'config'; message: ConfigMessage }
  | { t: 'config-error'; reason: string; drop?: ConfigDropReason }
  | { t: 'status'; status: ExchangeStatus; detail: string }
  | { t: 'error'; detail: string }
  | { t: 'stopped' };
