import { EventEmitter } from 'node:events';
import type { Exchange } from './exchange';

/**
 * A bus for brokers living in one process: the fallback when no nats-server can be had.
 * Messages are delivered asynchronously, as over a network.
 */
export class InProcessBus {
  private readonly ee = new EventEmitter();
  constructor() {
    this.ee.setMaxListeners(0);
  }
  /** A new exchange attached to this bus. */
  exchange(): Exchange {
    return new InProcessExchange(this.ee);
  }
}

// Like a NATS connection with `noEcho`: a node does not hear its own reports.
class InProcessExchange implements Exchange {
  private listener?: (from: InProcessExchange, nodeId: string, data: Uint8Array) => void;
  onStatus?: Exchange['onStatus'];
  constructor(private readonly ee: EventEmitter) {}

  async start(onMessage: (nodeId: string, data: Uint8Array) => void): Promise<void> {
    this.listener = (from, nodeId, data) => {
      if (from !== this) setImmediate(() => onMessage(nodeId, data));
    };
    this.ee.on('report', this.listener);
    this.onStatus?.('connected', this.describe());
  }
  publish(nodeId: string, data: Uint8Array): void {
    this.ee.emit('report', this, nodeId, data);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {
    if (this.listener) this.ee.off('report', this.listener);
    this.listener = undefined;
  }
  describe(): string {
    return 'in-process bus';
  }
}
