import * as grpc from '@grpc/grpc-js';

/** One channel per endpoint, shared by every client of a stub: a redirect never opens a new connection to a known node. */
export class ChannelPool {
  private readonly channels = new Map<string, grpc.Channel>();
  private readonly clients = new Map<string, grpc.Client>();
  private closed = false;

  constructor(
    readonly credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
    readonly channelOptions: grpc.ChannelOptions = {},
  ) {}

  /** The channel to `endpoint`, created on first use. */
  channel(endpoint: string): grpc.Channel {
    if (this.closed) throw new Error('channel pool is closed');
    let ch = this.channels.get(endpoint);
    if (!ch) {
      ch = new grpc.Channel(endpoint, this.credentials, this.channelOptions);
      this.channels.set(endpoint, ch);
    }
    return ch;
  }

  /** A generic client on the channel to `endpoint`, for calls made by path. */
  client(endpoint: string): grpc.Client {
    let c = this.clients.get(endpoint);
    if (!c) {
      c = new grpc.Client(endpoint, this.credentials, { channelOverride: this.channel(endpoint) });
      this.clients.set(endpoint, c);
    }
    return c;
  }

  /** Endpoints with an open channel. */
  endpoints(): string[] {
    return [...this.channels.keys()];
  }

  /** Closes every channel. */
  close(): void {
    this.closed = true;
    for (const ch of this.channels.values()) ch.close();
    this.channels.clear();
    this.clients.clear();
  }
}
