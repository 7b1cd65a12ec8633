import * as grpc from '@grpc/grpc-js';
import { ChannelPool } from './channel-pool';
import { DEFAULT_MEMBERS_REFRESH_MS, Membership } from './membership';
import { DEFAULT_MAX_REDIRECTS, redirectInterceptor, type StubContext } from './redirect-interceptor';

/** Options of `createClient`. */
export interface ClientOptions {
  /** Cluster endpoints (`host:port`); calls go to the first one, redirects to any member. Required. */
  endpoints: string[];
  /** Channel credentials. Default insecure. */
  credentials?: grpc.ChannelCredentials;
  /** Options of every channel. Default none. */
  channelOptions?: grpc.ChannelOptions;
  /** Redirects a call follows before the stub gives up. Default 3. */
  maxRedirects?: number;
  /** How often the member list is refreshed, ms (0: only when needed). Default 10 000. */
  membersRefreshMs?: number;
  /** More interceptors, run before the redirect interceptor. */
  interceptors?: grpc.Interceptor[];
}

/** A grpc-js client that follows peerbroker redirects; `peerbroker` holds the stub's parts. */
export type BrokeredClient<C extends grpc.Client> = C & {
  peerbroker: StubContext;
};

type ClientConstructor<C extends grpc.Client> = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => C;

/**
 * Returns a normal grpc-js client of `Client` (a generated or loaded constructor)
 * whose calls follow redirects transparently. `close()` closes every pooled channel.
 */
export function createClient<C extends grpc.Client>(Client: ClientConstructor<C>, options: ClientOptions): BrokeredClient<C> {
  if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
    throw new Error("createClient: 'endpoints' must list at least one host:port");
  }
  const pool = new ChannelPool(options.credentials ?? grpc.credentials.createInsecure(), options.channelOptions);
  const members = new Membership(pool, options.endpoints, options.membersRefreshMs ?? DEFAULT_MEMBERS_REFRESH_MS);
  const ctx: StubContext = {
    pool,
    members,
    maxRedirects: options.maxRedirects ?? DEFAULT_MAX_REDIRECTS,
    stats: { redirectsFollowed: 0, redirectsRefused: 0 },
  };
  const first = options.endpoints[0];
  const client = new Client(first, pool.credentials, {
    channelOverride: pool.channel(first),
    interceptors: [...(options.interceptors ?? []), redirectInterceptor(ctx)],
  }) as BrokeredClient<C>;
  members.start();
  client.peerbroker = ctx;
  client.close = () => {
    members.stop();
    pool.close();
  };
  return client;
}
