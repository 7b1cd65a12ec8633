import type { ConnectionOptions } from 'nats';
import type { ExchangeStatus } from './exchange';
import type { NodeInfo } from './report-builder';
import type { ConfigMessage } from './runtime-config';

/** What the reporter thread is started with (structured-cloneable). */
export interface WorkerInit {
  buffer: SharedArrayBuffer;
  info: NodeInfo;
  servers: string[];
  connection?: Partial<ConnectionOptions>;
}

/** Main thread → reporter thread. */
export type ToWorker = { t: 'info'; info: NodeInfo } | { t: 'now' } | { t: 'stop' };

/** Reporter thread → main thread. */
export type ToMain =
  | { t: 'started'; server: string }
  | { t: 'failed'; message: string }
  | { t: 'report'; nodeId: string; data: Uint8Array }
  | { t: 'config'; message: ConfigMessage }
  | { t: 'config-error'; reason: string }
  | { t: 'status'; status: ExchangeStatus; detail: string }
  | { t: 'stopped' };
