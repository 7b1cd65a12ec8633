import * as grpc from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { ChannelPool } from '../transport';
import { DEFAULT_MEMBERS_REFRESH_MS, Membership } from './membership';
import { DEFAULT_MAX_REDIRECTS, redirectInterceptor, type StubContext } from './redirect-interceptor';
import { DEFAULT_MAX_HELD_MESSAGES, FollowingStream, callArgs } from './streaming-call';
import { FollowingUnaryCall } from './unary-call';

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
  /** Messages a client-streaming or bidi call holds (for replay) before a node accepts it. Default 64. */
  maxHeldMessages?: number;
  /**
   * Methods safe to run twice (`pkg.Service/Method`), added to those the .proto declares with
   * `option idempotency_level = IDEMPOTENT` or `NO_SIDE_EFFECTS`: they are retried on another
   * member after a failure mid-call. Others are retried only when they were never sent.
   */
  idempotent?: string[];
  /** Other members a call is retried on when its node cannot be reached. Default 2. */
  maxFailovers?: number;
  /** More interceptors, run before the redirect interceptor. */
  interceptors?: grpc.Interceptor[];
}

/** What `client.peerbroker` holds: the stub's parts and its session scope. */
export interface StubHandle extends StubContext {
  /** A client of the same service sharing this one's channels, with a session slot of its own. */
  withSession(): BrokeredClient<grpc.Client>;
}

/** A grpc-js client that follows peerbroker redirects; `peerbroker` holds the stub's parts. */
export type BrokeredClient<C extends grpc.Client> = C & { peerbroker: StubHandle };

type ClientConstructor<C extends grpc.Client> = (new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => C) & { service?: grpc.ServiceDefinition };

/**
 * Returns a normal grpc-js client of `Client` (a generated or loaded constructor)
 * whose calls follow redirects transparently. `close()` closes every pooled channel.
 *
 * Sessions: a client is in at most one session at a time; the token a node returns
 * is sent on every later call of that client until the session's exit call ends it.
 * For concurrent sessions, take one client per session with `client.peerbroker.withSession()`.
 */
export function createClient<C extends grpc.Client>(Client: ClientConstructor<C>, options: ClientOptions): BrokeredClient<C> {
  if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
    throw new Error("createClient: 'endpoints' must list at least one host:port");
  }
  const pool = new ChannelPool(options.credentials ?? grpc.credentials.createInsecure(), options.channelOptions);
  const members = new Membership(pool, options.endpoints, options.membersRefreshMs ?? DEFAULT_MEMBERS_REFRESH_MS);
  members.start();
  const shared = {
    pool,
    members,
    maxRedirects: options.maxRedirects ?? DEFAULT_MAX_REDIRECTS,
    maxHeldMessages: options.maxHeldMessages ?? DEFAULT_MAX_HELD_MESSAGES,
    stats: { redirectsFollowed: 0, redirectsRefused: 0, failovers: 0 },
    origin: options.endpoints[0],
    idempotent: idempotentPaths(Client.service, options.idempotent),
    maxFailovers: options.maxFailovers ?? 2,
  };
  const root = build(Client, options, shared);
  root.close = () => {
    members.stop();
    pool.close();
  };
  return root;
}

/** Paths of methods declared idempotent in the .proto or named in `extra`. */
export function idempotentPaths(service: grpc.ServiceDefinition | undefined, extra: string[] = []): Set<string> {
  const paths = new Set(extra.map((m) => (m.startsWith('/') ? m : `/${m}`)));
  for (const def of Object.values(service ?? {})) {
    const level = (def as { options?: { idempotency_level?: string } }).options?.idempotency_level;
    if (level === 'IDEMPOTENT' || level === 'NO_SIDE_EFFECTS') paths.add(def.path);
  }
  return paths;
}

function build<C extends grpc.Client>(
  Client: ClientConstructor<C>,
  options: ClientOptions,
  shared: Omit<StubContext, 'session'>,
): BrokeredClient<C> {
  const ctx: StubContext = { ...shared, session: { token: '' } };
  const first = options.endpoints[0];
  const redirect = redirectInterceptor(ctx);
  const client = new Client(first, shared.pool.credentials, {
    channelOverride: shared.pool.channel(first),
    interceptors: [...(options.interceptors ?? []), redirect],
  }) as BrokeredClient<C>;
  // grpc-js lets per-call interceptors replace the client's: the redirect one goes last in them too.
  const withRedirect = (o: grpc.CallOptions): grpc.CallOptions =>
    o.interceptors?.length
      ? { ...o, interceptors: [...o.interceptors, redirect] }
      : o.interceptor_providers?.length
        ? { ...o, interceptor_providers: [...o.interceptor_providers, () => redirect] }
        : o;
  const methods = client as unknown as Record<string, (...args: unknown[]) => unknown>;
  const direct = !options.interceptors?.length;
  for (const [name, def] of Object.entries(Client.service ?? {})) {
    let method: (...args: unknown[]) => unknown;
    if (def.requestStream) {
      // Client-streaming and bidi methods: calls that hold and replay messages.
      method = (...args: unknown[]) => {
        const { metadata, options: callOptions, callback } = callArgs(args);
        const onAnswer = def.responseStream ? undefined : (callback ?? (() => {}));
        return new FollowingStream(ctx, def, metadata ?? new Metadata(), callOptions, onAnswer);
      };
    } else if (def.responseStream) {
      // Server-streaming methods go through the interceptor chain.
      const viaInterceptors = methods[name].bind(client);
      method = (request: unknown, ...rest: unknown[]) => {
        const { metadata, options: callOptions } = callArgs(rest);
        return viaInterceptors(request, metadata ?? new Metadata(), withRedirect(callOptions));
      };
    } else {
      // Unary methods are made on the channel directly, unless interceptors must see them
      // (then through the interceptor chain). The method kind is fixed: chosen here, not per call.
      const viaInterceptors = methods[name].bind(client);
      method = (request: unknown, ...rest: unknown[]) => {
        const { metadata, options: callOptions, callback } = callArgs(rest);
        const perCall = Boolean(callOptions.interceptors?.length || callOptions.interceptor_providers?.length);
        if (!callback) throw new Error('Incorrect arguments passed');
        if (direct && !perCall) return new FollowingUnaryCall(ctx, def, request, metadata ? metadata.clone() : new Metadata(), callOptions, callback);
        return viaInterceptors(request, metadata ?? new Metadata(), withRedirect(callOptions), callback);
      };
    }
    methods[name] = method;
    if (def.originalName) methods[def.originalName] = method;
  }
  const handle: StubHandle = Object.assign(ctx, {
    withSession: () => {
      const c = build(Client, options, shared) as unknown as BrokeredClient<grpc.Client>;
      c.close = () => {}; // the channels belong to the root client
      return c;
    },
  });
  client.peerbroker = handle;
  return client;
}
