import * as grpc from '@grpc/grpc-js';
import { ChannelPool } from '../transport';
import { callArgs } from './call-metadata';
import { DEFAULT_MEMBERS_REFRESH_MS, MEMBERS_RECHECK_MS, Membership, grpcMembersAsk } from './membership';
import { AdvisedRouting } from './routing';
import { StubChannel } from './stub-channel';
import { DEFAULT_MAX_FAILOVERS, DEFAULT_MAX_HELD_MESSAGES, DEFAULT_MAX_REDIRECTS, type StubContext } from './stub-context';
import { DirectUnaryCall } from './unary-call';

/** Options of `createClient`. */
export interface ClientOptions {
  /** Cluster endpoints (`host:port`); calls go to the first one, redirects to any member. Required. */
  endpoints: string[];
  /** Channel credentials, made with peerbroker's copy of grpc-js (`credentials` is exported for that). Default insecure. */
  credentials?: grpc.ChannelCredentials;
  /** Options of every channel. Default none. */
  channelOptions?: grpc.ChannelOptions;
  /** Redirects a call follows before the stub gives up. Default 3. */
  maxRedirects?: number;
  /** How often the member list is refreshed, ms (0: only when needed). Default 10 000. */
  membersRefreshMs?: number;
  /** Endpoints learned from the member list that are kept, at most. Default 256. */
  maxLearnedMembers?: number;
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
  /** Channels (one per endpoint) kept open at most; past it the least recently used idle one is closed. Default 64. */
  maxChannels?: number;
  /** A channel no call used for this long is closed, ms (0: never). Default 300 000. */
  channelIdleMs?: number;
  /** Interceptors of every call, of every kind; they run once per call, whatever redirects it follows. */
  interceptors?: grpc.Interceptor[];
}

/** What `client.peerbroker` holds: the stub's parts and its session scope. */
export interface StubHandle<C extends grpc.Client = grpc.Client> extends StubContext {
  /** A client of the same service and type sharing this one's channels, with a session slot of its own. */
  withSession(): BrokeredClient<C>;
}

/** A grpc-js client that follows peerbroker redirects; `peerbroker` holds the stub's parts. */
export type BrokeredClient<C extends grpc.Client> = C & { peerbroker: StubHandle<C> };

type ClientConstructor<C extends grpc.Client> = (new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => C) & { service?: grpc.ServiceDefinition };

/**
 * Returns a normal grpc-js client of `Client` (a generated or loaded constructor, from any
 * copy of grpc-js) whose calls follow redirects transparently. `close()` closes every pooled
 * channel.
 *
 * Sessions: a client is in at most one session at a time; the token a node returns
 * is sent on every later call of that client until the session's exit call ends it.
 * For concurrent sessions, take one client per session with `client.peerbroker.withSession()`.
 */
export function createClient<C extends grpc.Client>(Client: ClientConstructor<C>, options: ClientOptions): BrokeredClient<C> {
  if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
    throw new Error("createClient: 'endpoints' must list at least one host:port");
  }
  const credentials = options.credentials ?? grpc.credentials.createInsecure();
  if (!(credentials instanceof grpc.ChannelCredentials)) {
    // Channel credentials hold the TLS setup in grpc-js's internals: another copy's cannot be read.
    throw new Error("createClient: 'credentials' were made by another copy of @grpc/grpc-js; make them with peerbroker's (`import { credentials } from 'peerbroker'`)");
  }
  const pool = new ChannelPool(credentials, options.channelOptions, { maxChannels: options.maxChannels, idleMs: options.channelIdleMs });
  const members = new Membership(options.endpoints, grpcMembersAsk(pool), {
    refreshMs: options.membersRefreshMs ?? DEFAULT_MEMBERS_REFRESH_MS,
    maxLearned: options.maxLearnedMembers,
  });
  members.start();
  const origin = options.endpoints[0];
  const shared: Omit<StubContext, 'session'> = {
    pool,
    members,
    routing: new AdvisedRouting(
      origin,
      (e) => members.has(e),
      () => members.refreshIfOlder(MEMBERS_RECHECK_MS),
    ),
    maxRedirects: options.maxRedirects ?? DEFAULT_MAX_REDIRECTS,
    maxHeldMessages: options.maxHeldMessages ?? DEFAULT_MAX_HELD_MESSAGES,
    stats: { redirectsFollowed: 0, redirectsRefused: 0, failovers: 0 },
    origin,
    idempotent: idempotentPaths(Client.service, options.idempotent),
    maxFailovers: options.maxFailovers ?? DEFAULT_MAX_FAILOVERS,
  };
  const requestStreams = new Map(Object.values(Client.service ?? {}).map((d) => [d.path, d.requestStream]));
  return build(Client, options, shared, requestStreams, () => {
    members.stop();
    pool.close();
  });
}

/** Paths of methods declared idempotent in the .proto or named in `extra`. */
function idempotentPaths(service: grpc.ServiceDefinition | undefined, extra: string[] = []): Set<string> {
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
  requestStreams: ReadonlyMap<string, boolean>,
  close: () => void,
): BrokeredClient<C> {
  const ctx: StubContext = { ...shared, session: { token: '' } };
  // Every call of every kind runs on the stub's channel, below grpc-js's client and interceptors.
  const client = new Client(ctx.origin, shared.pool.credentials, {
    channelOverride: new StubChannel(ctx, requestStreams, close),
    interceptors: options.interceptors,
  }) as BrokeredClient<C>;
  if (!options.interceptors?.length) directUnaryMethods(client, Client.service ?? {}, ctx);
  const handle: StubHandle<C> = Object.assign(ctx, {
    // The channels belong to the root client: closing a session's client closes nothing.
    withSession: () => build(Client, options, shared, requestStreams, () => {}),
  });
  client.peerbroker = handle;
  return client;
}

/**
 * Replaces the unary methods of `client` with calls made on the stub's attempt loop directly,
 * skipping grpc-js's client and interceptor layers (about 10 % of a small call's client CPU).
 * A call given per-call interceptors goes through grpc-js's own method, so they run.
 */
function directUnaryMethods(client: grpc.Client, service: grpc.ServiceDefinition, ctx: StubContext): void {
  const methods = client as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const [name, def] of Object.entries(service)) {
    if (def.requestStream || def.responseStream) continue;
    const viaInterceptors = methods[name].bind(client);
    const method = (request: unknown, ...rest: unknown[]) => {
      const { metadata, options, callback } = callArgs(rest);
      if (!callback) throw new Error('Incorrect arguments passed');
      if (options.interceptors?.length || options.interceptor_providers?.length) return viaInterceptors(request, ...rest);
      return new DirectUnaryCall(ctx, def, request, metadata, options, callback);
    };
    methods[name] = method;
    if (def.originalName) methods[def.originalName] = method;
  }
}
