import type { NatsConnection } from 'nats';

/** The state of the control-plane connection, as a typed stream (nats.js style). */
export type ExchangeStatus = 'connected' | 'disconnected' | 'reconnecting' | 'reconnected' | 'closed';

/** Carries load reports between brokers. NATS in production; in-process for the fallback demo. */
export interface Exchange {
  /** Subscribes to every load subject of the cluster; `onMessage` gets the subject's node token. */
  start(onMessage: (nodeId: string, data: Uint8Array) => void): Promise<void>;
  /** Publishes this node's report on its own subject. Never throws; drops while disconnected. */
  publish(nodeId: string, data: Uint8Array): void;
  /** Flushes pending publishes (used before a clean stop). */
  flush(): Promise<void>;
  /** Closes the connection and subscription. */
  close(): Promise<void>;
  /** Called when the server refuses an operation (e.g. a permissions violation). */
  onError?: (detail: string) => void;
  /** Called on every connection status change. */
  onStatus?: (status: ExchangeStatus, detail: string) => void;
  /** A description for logs: which server or bus. */
  describe(): string;
  /** The NATS connection under the exchange once started, if it has one (the config watcher uses it). */
  connection?(): NatsConnection | undefined;
}

/** `peerbroker.<cluster>.load.<node>` */
export function loadSubject(cluster: string, nodeId: string): string {
  return `peerbroker.${cluster}.load.${nodeId}`;
}
