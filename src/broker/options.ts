import type { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js';
import type { ConnectionOptions } from 'nats';
import { z } from 'zod';
import { ClusterKey, isValidNodeId, loadMeterNames, MAX_PERIOD_MS, MIN_PERIOD_MS, natsAuthSchema, natsConnectionOptions, type Exchange, type LoadMeter, type NatsAuthOptions } from '../cluster';
import { ConfigError } from '../errors';
import { LOG_FORMATS, LOG_LEVELS, type Logger } from '../log';
import { isMethodPattern, peerChoiceNames } from '../policy';
import { isHostPort } from '../wire';
import { DEFAULT_HTTP_MAX_BODY_BYTES, MAX_HTTP_BODY_BYTES } from '../http';
import { DEFAULT_CANCEL_GRACE_MS } from './local-call';
import { DEFAULT_MAX_LOOP_DELAY_MS } from './node-health';
import { option, optionInfo, withoutDefault, type RuntimeOption } from './option-info';
import type { MetricsOptions } from './metrics';
import { openFileLimit } from './resource-pressure';
import { DEFAULT_MAX_CONNECTIONS, MIN_DEFAULT_MAX_STREAMS, serverOptionsShape } from './server-options';
import { DEFAULT_MAX_SESSIONS } from './session-table';
import { isCidr } from './takeover-addresses';
import { loadTls, tlsFilesSchema, type LoadedTls } from './tls';

/** Default reporting period (docs/design.md, The control plane). */
export const DEFAULT_PERIOD_MS = 500;
/** Default load below which a call always runs here. */
export const DEFAULT_THRESHOLD = 0.5;
/** Default load difference a peer must beat to be sent a call. */
export const DEFAULT_MARGIN = 0.2;
/** Default concurrent calls at 100 % load. */
export const DEFAULT_CAPACITY = 64;
/** Default redirects after which a call is run wherever it is. */
export const DEFAULT_MAX_HOPS = 2;
/** Default missed periods before a silent peer is off-line. */
export const DEFAULT_OFFLINE_AFTER_PERIODS = 3;
/** Default peer-choice rule (chosen by the benchmark; see bench/README.md). */
export const DEFAULT_PEER_CHOICE = 'least-loaded-accounted';
/** Default cluster name. */
export const DEFAULT_CLUSTER = 'default';
/** Default time a restarted node keeps trying to bind its address while an adopter lets it go, ms. */
export const DEFAULT_RECLAIM_TIMEOUT_MS = 30_000;
/** Default time in-flight calls get to finish on drain, ms. */
export const DEFAULT_DRAIN_GRACE_MS = 15_000;

const hostPort = z.string().refine(isHostPort, { message: 'must be host:port' });
const pattern = z.string().refine(isMethodPattern, { message: 'must be pkg.Service/Method, pkg.Service/* or *' });
const patterns = z.union([pattern, z.array(pattern).min(1)]);
const natsUrl = z.string().regex(/^(nats|tls|ws|wss):\/\/[^\s,]+$|^[A-Za-z0-9.-]+:\d+$/, 'must be a NATS URL');
const oneOf = <T extends string>(values: readonly T[]) => z.enum(values as [T, ...T[]], { error: `must be one of ${values.join(', ')}` });
const func = <T>(what: string) => z.custom<T>((v) => typeof v === 'function', `must be ${what}`);

/** Schema of a session rule. */
export const sessionRuleSchema = z
  .object({ enter: pattern, within: patterns, exit: patterns, idleMs: z.number().int().min(100).max(86_400_000).optional() })
  .strict();

/** Schema of the dedicated-home rules. */
export const dedicatedSchema = z.record(pattern, z.array(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be node ids')).min(1));

/**
 * Every option of a Broker, the one place where an option is declared: its type and
 * check, default and description, and in `option()`'s info how the command line, YAML
 * files and `peerbroker config set` name it. Flags and YAML keys are the kebab-case of
 * the name unless `flag` says otherwise; `flag: false` keeps an option to the library.
 * See DEVELOPERS.md, "Adding an option".
 */
export const brokerOptionsSchema = z
  .object({
    nodeId: option(z.string().refine(isValidNodeId, { message: 'must be 1-64 letters, digits, _ or -' }), {
      description: "this node's id: letters, digits, _ and - (a NATS subject token); required",
      arg: 'id',
    }),
    listen: option(hostPort.default('127.0.0.1:0'), { description: 'host:port the gRPC server listens on; port 0 picks a free one', arg: 'host:port' }),
    advertise: option(hostPort.optional(), { description: 'host:port peers and clients are told', arg: 'host:port', defaultText: 'the listen address' }),
    httpListen: option(hostPort.optional(), {
      description: 'host:port of the HTTP/JSON listener: calls as POST /pkg.Service/Method, 307 redirects, the cluster page at /',
      arg: 'host:port',
      defaultText: 'off',
    }),
    httpAdvertise: option(hostPort.optional(), { description: 'host:port peers and browsers are told for HTTP (the Location of redirects)', arg: 'host:port', defaultText: 'the HTTP listen address' }),
    httpMaxBodyBytes: option(z.number().int().min(1024).max(MAX_HTTP_BODY_BYTES).default(DEFAULT_HTTP_MAX_BODY_BYTES), {
      description: 'largest HTTP request body, bytes; a larger one is refused with 413 before it is read',
      arg: 'bytes',
    }),
    httpAllowOrigins: option(z.array(z.string().regex(/^(\*|https?:\/\/[^\s/,]+)$/, "must be origins like 'https://app.example' or '*'")).default([]), {
      description: "web origins (besides the cluster's own HTTP origins) whose pages may call this node from a browser (CORS), comma-separated; '*' allows any",
      arg: 'origins',
      defaultText: 'none',
    }),
    cluster: option(
      z
        .string()
        .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -')
        .default(DEFAULT_CLUSTER),
      { description: "cluster name: brokers of one cluster see each other's reports", arg: 'name' },
    ),
    nats: option(
      z
        .union([z.string(), z.array(z.string())])
        .transform((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v))
        .pipe(z.array(natsUrl))
        .default([]),
      { description: 'NATS server URLs, comma-separated; without them the node runs alone', arg: 'urls', defaultText: 'none' },
    ),
    natsOptions: option(z.custom<Partial<ConnectionOptions>>().optional(), { description: 'extra nats.js connection options', flag: false }),
    reporterThread: option(z.boolean().default(true), {
      description: 'report from a worker thread with its own NATS connection, so a blocked main loop still reports',
      flag: false,
    }),
    exchange: option(z.custom<Exchange>().optional(), { description: 'a ready exchange instead of NATS (the in-process fallback)', flag: false }),
    capacity: option(z.number().int().min(1).max(1_000_000).default(DEFAULT_CAPACITY), { description: 'concurrent calls at 100% load; more wait in a queue', arg: 'n' }),
    maxQueue: option(z.number().int().min(0).max(10_000_000).optional(), { description: 'calls that may wait for a slot; past that a call that cannot move fails with RESOURCE_EXHAUSTED', arg: 'n', defaultText: '4 x capacity' }),
    maxSessions: option(z.number().int().min(1).max(100_000_000).default(DEFAULT_MAX_SESSIONS), { description: 'live sessions this node may own; an enter call past that fails with RESOURCE_EXHAUSTED before it runs', arg: 'n' }),
    cancelGraceMs: option(z.number().int().min(0).max(3_600_000).default(DEFAULT_CANCEL_GRACE_MS), { description: 'after a cancel or deadline, how long a handler still running keeps its slot at most, ms', arg: 'ms' }),
    ...serverOptionsShape,
    threshold: option(z.number().min(0).max(1).default(DEFAULT_THRESHOLD), { description: 'below this load (0..1) a call always runs here', arg: 'x', runtime: true }),
    margin: option(z.number().min(0).max(1).default(DEFAULT_MARGIN), { description: 'a peer must be this much less loaded to be sent a call', arg: 'x', runtime: true }),
    periodMs: option(z.number().int().min(MIN_PERIOD_MS).max(MAX_PERIOD_MS).default(DEFAULT_PERIOD_MS), { description: 'load report period, ms; also the heartbeat', arg: 'ms', runtime: true }),
    offlineAfterPeriods: option(z.number().int().min(2).max(1000).default(DEFAULT_OFFLINE_AFTER_PERIODS), {
      description: 'missed periods before a silent peer is off-line',
      flag: 'offline-after',
      arg: 'n',
    }),
    maxHops: option(z.number().int().min(0).max(16).default(DEFAULT_MAX_HOPS), { description: 'redirects after which a call runs where it lands', arg: 'n', runtime: true }),
    peerChoice: option(
      z.string().refine((n) => peerChoiceNames().includes(n), { message: `must be one of ${peerChoiceNames().join(', ')}` }).default(DEFAULT_PEER_CHOICE),
      { description: `peer-choice rule: ${peerChoiceNames().join(' | ')}`, arg: 'name', runtime: true },
    ),
    meters: option(z.array(z.union([
      z.string().refine((n) => loadMeterNames().includes(n), { message: `must be one of ${loadMeterNames().join(', ')} (or a meter object)` }),
      z.custom<LoadMeter>((v) => typeof v === 'object' && v !== null, 'must be a meter name or object'),
    ])).optional(), {
      description: 'extra load meters (names, comma-separated; objects in the library), sampled every period; load is the highest',
      arg: 'names',
    }),
    services: option(z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]*$/, 'must be full service names like pkg.Service')).optional(), {
      description: 'services this node hosts, comma-separated; calls for the others are redirected',
      arg: 'names',
      defaultText: 'all the module adds',
    }),
    forwardLegacy: option(z.boolean().default(false), { description: 'forward calls of clients that do not follow redirects, instead of running them here', runtime: true }),
    sessions: option(z.array(sessionRuleSchema).default([]), { description: 'session rules (pinned calls), added to those of the .proto files', runtime: true }),
    dedicated: option(dedicatedSchema.default({}), { description: "preferred homes: { 'bank.Securities/*': ['n2'] }", runtime: true }),
    reflection: option(z.boolean().default(false), {
      description: 'serve gRPC server reflection (grpc.reflection.v1), so grpcurl can list and call the services without their .proto',
    }),
    takeover: option(z.boolean().default(true), { description: 'adopt the endpoints of peers that go off-line (identity takeover)' }),
    takeoverOnLeave: option(z.boolean().default(false), { description: 'also adopt the own endpoint of peers that leave cleanly (adopted ones always move on)' }),
    takeoverAddresses: option(z.array(z.string().refine(isCidr, { message: 'must be IP addresses or CIDR ranges like 10.0.5.0/24' })).optional(), {
      description: 'addresses this node may adopt: IP addresses or CIDR ranges, comma-separated; never a wildcard or a host name',
      arg: 'ranges',
      defaultText: 'loopback when advertised on loopback, else none',
    }),
    onAdopt: option(z.string().min(1).optional(), { description: 'shell command run before adopting an endpoint (env PEERBROKER_ENDPOINT, PEERBROKER_NODE)', arg: 'command' }),
    onRelease: option(z.string().min(1).optional(), { description: 'shell command run after releasing an adopted endpoint', arg: 'command' }),
    reclaimTimeoutMs: option(z.number().int().min(0).max(3_600_000).default(DEFAULT_RECLAIM_TIMEOUT_MS), {
      description: 'longest a restarted node waits for a peer that adopted its address to release it, ms',
      arg: 'ms',
    }),
    healthProbe: option(func<() => boolean | Promise<boolean>>('a function').optional(), {
      description: 'a check run every period; false, a rejection or no answer within a period means unhealthy',
      flag: false,
    }),
    maxLoopDelayMs: option(z.number().int().min(10).max(600_000).default(DEFAULT_MAX_LOOP_DELAY_MS), {
      description: 'main-loop delay (p99 over a period) above which the node is unhealthy, ms',
      arg: 'ms',
    }),
    drainGraceMs: option(z.number().int().min(0).max(3_600_000).default(DEFAULT_DRAIN_GRACE_MS), { description: 'on drain, how long in-flight calls may take to finish, ms', arg: 'ms' }),
    handleSignals: option(z.boolean().default(false), {
      description: 'on SIGTERM or SIGINT drain, then exit the process (a second signal stops at once); the CLI always does',
      flag: false,
    }),
    serverCredentials: option(z.custom<ServerCredentials>().optional(), { description: 'gRPC server credentials (default: from tls, else plaintext)', flag: false }),
    peerCredentials: option(z.custom<ChannelCredentials>().optional(), { description: 'credentials for calling peers (forwarded calls)', flag: false }),
    tls: option(tlsFilesSchema.optional(), {
      description: 'gRPC TLS from PEM files; with caFile, clients must present a certificate it signed',
      fields: {
        certFile: { flag: 'tls-cert', description: 'gRPC TLS certificate chain (PEM) naming the addresses this node is reached at' },
        keyFile: { flag: 'tls-key', description: 'key of the gRPC certificate (PEM)' },
        caFile: { flag: 'tls-ca', description: 'CA (PEM): clients must present a certificate it signed; peers are checked against it' },
      } satisfies Record<keyof z.infer<typeof tlsFilesSchema>, unknown>,
    }),
    natsAuth: option(natsAuthSchema.optional(), {
      description: 'how to authenticate to NATS and check its certificate',
      fields: {
        user: { flag: 'nats-user', arg: 'name', description: 'NATS user name (password from --nats-pass-file or $PEERBROKER_NATS_PASS)' },
        pass: { flag: 'nats-pass', arg: 'secret', description: 'NATS password (visible in ps: prefer --nats-pass-file or $PEERBROKER_NATS_PASS)' },
        passFile: { flag: 'nats-pass-file', description: 'file holding the NATS password' },
        token: { flag: 'nats-token', arg: 'secret', description: 'NATS token (visible in ps: prefer --nats-token-file or $PEERBROKER_NATS_TOKEN)' },
        tokenFile: { flag: 'nats-token-file', description: 'file holding the NATS token' },
        nkeySeedFile: { flag: 'nats-nkey-seed-file', description: 'file holding an NKey user seed' },
        credsFile: { flag: 'nats-creds', description: 'NATS .creds file (user JWT and seed)' },
        tlsCaFile: { flag: 'nats-tls-ca', description: 'CA (PEM) the NATS server certificate must chain to; turns NATS TLS on' },
        tlsCertFile: { flag: 'nats-tls-cert', description: 'client certificate (PEM) for NATS' },
        tlsKeyFile: { flag: 'nats-tls-key', description: 'key of the NATS client certificate (PEM)' },
      } satisfies Record<keyof NatsAuthOptions, unknown>,
    }),
    clusterKeyFile: option(z.string().min(1).optional(), {
      description: 'file holding the cluster key: reports and config changes are signed, unsigned ones dropped',
      arg: 'file',
    }),
    clusterKey: option(z.union([z.string(), z.custom<ClusterKey>((v) => v instanceof ClusterKey, "must be a key file's text or a ClusterKey")]).optional(), {
      description: 'the cluster key itself (the text of a key file), instead of clusterKeyFile',
      flag: false,
    }),
    metricsListen: option(hostPort.optional(), { description: 'host:port of the Prometheus endpoint (GET /metrics); port 0 picks a free one', arg: 'host:port', defaultText: 'none' }),
    metrics: option(z.custom<MetricsOptions>((v) => typeof v === 'object' && v !== null, 'must be { registry?, processMetrics? }').optional(), {
      description: 'Prometheus metrics in the library: the prom-client registry to register in, and whether to add the process metrics',
      flag: false,
    }),
    logLevel: option(oneOf(LOG_LEVELS).optional(), { description: `level of the default logger: ${LOG_LEVELS.join(' | ')}`, arg: 'level', defaultText: 'info, or $PEERBROKER_LOG_LEVEL' }),
    logFormat: option(oneOf(LOG_FORMATS).optional(), {
      description: 'format of the default logger on stderr: pretty (for people) or json (one object a line)',
      arg: 'format',
      defaultText: 'pretty on a terminal, else json',
    }),
    logger: option(z.custom<Logger>().optional(), { description: 'logger to derive the broker loggers from (default: pino on stderr)', flag: false }),
  })
  .strict();

/** Options of a Broker, as given (see `brokerOptionsSchema` for each one's meaning and default). */
export type BrokerOptions = z.input<typeof brokerOptionsSchema>;

/** Options with every default applied, and the cluster key and TLS files read. */
export type ResolvedBrokerOptions = Omit<z.output<typeof brokerOptionsSchema>, 'maxQueue' | 'maxConnections' | 'maxStreams' | 'clusterKey' | 'clusterKeyFile'> & {
  maxQueue: number;
  maxConnections: number;
  maxStreams: number;
  clusterKey?: ClusterKey;
  /** The contents of the `tls` files, read and checked once; never logged. */
  tlsLoaded?: LoadedTls;
};

/** Validates options and applies defaults; a bad value throws a ConfigError naming the field. */
export function parseBrokerOptions(input: BrokerOptions): ResolvedBrokerOptions {
  const r = brokerOptionsSchema.safeParse(input);
  if (!r.success) throw toConfigError(r.error);
  const o = r.data;
  // Files are read now, so a bad path or key stops the start with the option's name. The
  // NATS options are built again where the connection is made: the reporter thread cannot
  // be handed the authenticator functions.
  const tlsLoaded = o.tls ? loadTls(o.tls) : undefined;
  natsConnectionOptions(o.natsAuth);
  const { clusterKeyFile, clusterKey, ...rest } = o;
  if (clusterKeyFile !== undefined && clusterKey !== undefined) throw new ConfigError('clusterKeyFile', "give the cluster key once: 'clusterKey' or 'clusterKeyFile'");
  const key =
    clusterKeyFile !== undefined
      ? ClusterKey.fromFile(clusterKeyFile)
      : typeof clusterKey === 'string'
        ? ClusterKey.parse(clusterKey, 'clusterKey')
        : clusterKey;
  const maxQueue = o.maxQueue ?? 4 * o.capacity;
  const files = openFileLimit();
  return {
    ...rest,
    clusterKey: key,
    tlsLoaded,
    maxQueue,
    // Connections past the open-file limit could not be accepted anyway: a quarter is left to NATS, peers and files.
    maxConnections: o.maxConnections ?? Math.max(1, Math.min(DEFAULT_MAX_CONNECTIONS, files === undefined ? Infinity : Math.floor(files * 0.75))),
    maxStreams: o.maxStreams ?? Math.max(MIN_DEFAULT_MAX_STREAMS, 2 * (o.capacity + maxQueue)),
  };
}

/** Turns the first zod issue into a ConfigError with the field's path, renamed by `rename` (e.g. to a flag). */
export function toConfigError(error: z.ZodError, rename: (path: readonly PropertyKey[]) => string = fieldPath): ConfigError {
  const issue = error.issues[0];
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, String(issue.keys[0])] : issue.path;
  const message = issue.code === 'unrecognized_keys' ? 'is not a known option' : issue.message;
  return new ConfigError(rename(path) || '(options)', message);
}

/** `sessions[0].enter`: a path as ConfigErrors name it. */
export function fieldPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : (i > 0 ? '.' : '') + String(p))).join('');
}

type Shape = (typeof brokerOptionsSchema)['shape'];
/** Names of the options `peerbroker config set` may change at run time (`runtime: true` in their info). */
export type RuntimeKey = { [K in keyof Shape]: Shape[K] extends RuntimeOption ? K : never }[keyof Shape];

/** The runtime options, in the schema's order. */
export const RUNTIME_KEYS = (Object.keys(brokerOptionsSchema.shape) as Array<keyof Shape>).filter(
  (k) => optionInfo.get(brokerOptionsSchema.shape[k])?.runtime === true,
) as RuntimeKey[];

/** Schema of the values `peerbroker config set` may change: the runtime options, each optional, no defaults. */
export const runtimeSchema = z
  .object(Object.fromEntries(RUNTIME_KEYS.map((k) => [k, withoutDefault(brokerOptionsSchema.shape[k]).optional()])))
  .strict();

/** Runtime values, checked: any of the runtime options. */
export type RuntimeConfig = Partial<Pick<ResolvedBrokerOptions, RuntimeKey>>;

/** Validates runtime values; a bad one throws a ConfigError naming the field (renamed by `rename`). */
export function parseRuntimeValues(values: unknown, rename?: (path: readonly PropertyKey[]) => string): RuntimeConfig {
  const r = runtimeSchema.safeParse(values);
  if (!r.success) throw toConfigError(r.error, rename);
  return r.data as RuntimeConfig;
}
