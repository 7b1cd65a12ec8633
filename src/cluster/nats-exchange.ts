import { connect, type ConnectionOptions, type NatsConnection } from 'nats';
import type { Exchange, ExchangeStatus } from './exchange';
import { loadSubject } from './exchange';
import { natsConnectionOptions, permissionViolation, redactUrl, type NatsAuthOptions } from './nats-auth';

/** Options of the NATS exchange. */
export interface NatsExchangeOptions {
  /** NATS server URLs; the client moves to another when the one it uses dies. */
  servers: string[];
  cluster: string;
  /** Connection name shown by the server's monitoring. */
  name: string;
  /** Extra `nats` connection options (TLS, credentials). */
  connection?: Partial<ConnectionOptions>;
}

/** Load reports over NATS core pub/sub: one subject per node. */
export class NatsExchange implements Exchange {
  private nc?: NatsConnection;
  onStatus?: (status: ExchangeStatus, detail: string) => void;
  /** The server refused something (a permissions violation names the operation and subject). */
  onError?: (detail: string) => void;

  constructor(private readonly opts: NatsExchangeOptions) {}

  /**
   * The exchange of one broker node: connection named `peerbroker-<cluster>-<nodeId>`,
   * not hearing its own reports, authenticated as `natsAuth` says (throws when its files
   * cannot be read).
   */
  static forNode(o: {
    servers: string[];
    cluster: string;
    nodeId: string;
    connection?: Partial<ConnectionOptions>;
    natsAuth?: NatsAuthOptions;
  }): NatsExchange {
    return new NatsExchange({
      servers: o.servers,
      cluster: o.cluster,
      name: `peerbroker-${o.cluster}-${o.nodeId}`,
      connection: { noEcho: true, ...o.connection, ...natsConnectionOptions(o.natsAuth) },
    });
  }

  async start(onMessage: (nodeId: string, data: Uint8Array) => void): Promise<void> {
    this.nc = await connect({
      servers: this.opts.servers,
      name: this.opts.name,
      // Keep trying forever: the control plane may come back long after it left.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      pingInterval: 2_000,
      maxPingOut: 2,
      waitOnFirstConnect: false,
      ...this.opts.connection,
    });
    void this.watch(this.nc);
    const prefix = loadSubject(this.opts.cluster, '');
    this.nc.subscribe(`${prefix}*`, {
      callback: (err, msg) => {
        if (err) return;
        onMessage(msg.subject.slice(prefix.length), msg.data);
      },
    });
    this.onStatus?.('connected', this.describe());
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      const detail = typeof s.data === 'string' ? s.data : JSON.stringify(s.data);
      if (s.type === 'disconnect') this.onStatus?.('disconnected', detail);
      else if (s.type === 'reconnecting') this.onStatus?.('reconnecting', detail);
      else if (s.type === 'reconnect') this.onStatus?.('reconnected', detail);
      else if (s.type === 'error') {
        const violation = permissionViolation(s);
        this.onError?.(violation ? `permissions violation: ${violation}` : detail);
      }
    }
  }

  publish(nodeId: string, data: Uint8Array): void {
    const nc = this.nc;
    if (!nc || nc.isClosed()) return;
    try {
      nc.publish(loadSubject(this.opts.cluster, nodeId), data);
    } catch {
      // Disconnected past the client's buffer: a report is only worth its freshness.
    }
  }

  async flush(): Promise<void> {
    if (this.nc && !this.nc.isClosed()) {
      await Promise.race([this.nc.flush(), new Promise((r) => setTimeout(r, 500).unref())]);
    }
  }

  async close(): Promise<void> {
    const nc = this.nc;
    this.nc = undefined;
    if (!nc || nc.isClosed()) return;
    await nc.close();
    this.onStatus?.('closed', '');
  }

  describe(): string {
    return `nats ${this.nc?.getServer() ?? this.opts.servers.map(redactUrl).join(',')}`;
  }

  /** The NATS connection (for the config watcher), once started. */
  connection(): NatsConnection | undefined {
    return this.nc;
  }

  /** The server this exchange is connected to now (`host:port`), for tests and status. */
  currentServer(): string | undefined {
    return this.nc?.getServer();
  }
}
