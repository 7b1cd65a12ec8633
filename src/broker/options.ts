import type { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js';
import type { ConnectionOptions } from 'nats';
import { z } from 'zod';
import { ClusterKey, isValidNodeId, natsAuthSchema, natsConnectionOptions, type Exchange, type LoadMeter, type NatsAuthOptions } from '../cluster';
import { ConfigError } from '../errors';
import type { Logger } from '../log';
import { isMethodPattern, peerChoiceNames, type DedicatedRules, type SessionRule } from '../policy';
import { parseHostPort } from '../wire';
import { DEFAULT_MAX_LOOP_DELAY_MS } from './node-health';
import { isCidr } from './takeover-addresses';
import { loadTls, type TlsFiles } from './tls';

/** Default reporting period (DESIGN.md). */
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

/** Options of a Broker. */
export interface BrokerOptions {
  /** This node's id: letters, digits, `_` and `-`, at most 64. Required. */
  nodeId: string;
  /** `host:port` the gRPC server listens on; port 0 picks a free one. Default `127.0.0.1:0`. */
  listen?: string;
  /** `host:port` peers and clients are told to use. Default: the bound listen address. */
  advertise?: string;
  /** Cluster name: brokers of one cluster see each other's reports. Default `default`. */
  cluster?: string;
  /** NATS server URLs (or one comma-separated string). Without them and without `exchange`, the node runs alone. */
  nats?: string[] | string;
  /** Extra `nats` connection options (TLS, credentials). */
  natsOptions?: Partial<ConnectionOptions>;
  /** Report from a worker thread with its own NATS connection, so a blocked main loop still reports. Default true. */
  reporterThread?: boolean;
  /** A ready exchange instead of NATS (the in-process fallback). */
  exchange?: Exchange;
  /** Concurrent calls at 100 % load; more wait in a queue. Default 64. */
  capacity?: number;
  /** Calls that may wait for a slot. Default 4 × capacity. */
  maxQueue?: number;
  /** Below this load (0..1) a call always runs here. Default 0.5. */
  threshold?: number;
  /** A peer must be this much less loaded to be sent a call. Default 0.2. */
  margin?: number;
  /** Reporting period, ms. Default 500. */
  periodMs?: number;
  /** Missed periods before a silent peer is off-line. Default 3. */
  offlineAfterPeriods?: number;
  /** A call that followed this many redirects runs where it lands. Default 2. */
  maxHops?: number;
  /** Peer-choice rule by name. Default `least-loaded-accounted` (chosen by the benchmark; bench/README.md). */
  peerChoice?: string;
  /** Extra load meters (names or objects), sampled every period; load is the highest. Default none. */
  meters?: Array<string | LoadMeter>;
  /** Services this node hosts, by full name (`bank.Banking`); calls for the others are redirected. Default: all added. */
  services?: string[];
  /** Forward calls of clients that do not follow redirects, instead of running them here. Default false. */
  forwardLegacy?: boolean;
  /** Session rules (pinned calls); added to those declared in the .proto files. Default none. */
  sessions?: SessionRule[];
  /** Preferred homes: `{ 'bank.Securities/*': ['n2'] }`. Default none. */
  dedicated?: DedicatedRules;
  /** May adopt the endpoints of peers that go off-line (identity takeover). Default true. */
  takeover?: boolean;
  /** Also adopt the own endpoint of peers that leave cleanly (the ones they had adopted always move on). Default false. */
  takeoverOnLeave?: boolean;
  /**
   * Addresses this node may adopt: IP addresses or CIDR ranges (`['10.0.5.0/24']`). Never an
   * unspecified address or a host name. Default: loopback (127.0.0.0/8 or ::1) when this node
   * is advertised on loopback, else none (nothing is adopted until this is set).
   */
  takeoverAddresses?: string[];
  /** Shell command run before adopting an endpoint (env PEERBROKER_ENDPOINT, PEERBROKER_NODE). Default none. */
  onAdopt?: string;
  /** Shell command run after releasing an adopted endpoint. Default none. */
  onRelease?: string;
  /** Longest time a restarted node waits for its adopter to release its address, ms. Default 30 000. */
  reclaimTimeoutMs?: number;
  /** A user check run every period; false, a rejection or no answer within a period means unhealthy. */
  healthProbe?: () => boolean | Promise<boolean>;
  /** Main-loop delay (p99 over a period) above which the node is unhealthy, ms. Default 1000. */
  maxLoopDelayMs?: number;
  /** On drain, how long in-flight calls may take to finish, ms. Default 15 000. */
  drainGraceMs?: number;
  /** gRPC server credentials. Default: from `tls`, else insecure (loopback only). */
  serverCredentials?: ServerCredentials;
  /** Credentials this node calls its peers with (forwarded calls). Default: from `tls`, else insecure. */
  peerCredentials?: ChannelCredentials;
  /**
   * gRPC TLS from PEM files; with `caFile`, clients must present a certificate signed by
   * it. Peers are called (forwarded calls) with the same certificate. Default none:
   * plaintext, which is fine on loopback only (a warning is logged otherwise).
   */
  tls?: TlsFiles;
  /** How to authenticate to NATS and check its certificate (names and file paths). Default none. */
  natsAuth?: NatsAuthOptions;
  /** File holding the cluster key: every report and config change is signed, and unsigned ones are dropped. Default none. */
  clusterKeyFile?: string;
  /** The cluster key itself (the text of a key file), instead of `clusterKeyFile`. Default none. */
  clusterKey?: string | ClusterKey;
  /** Logger to derive the broker's loggers from. Default: pino on stderr. */
  logger?: Logger;
}

/** Options with every default applied. */
export type ResolvedBrokerOptions = Required<
  Pick<
    BrokerOptions,
    | 'nodeId'
    | 'listen'
    | 'cluster'
    | 'capacity'
    | 'maxQueue'
    | 'threshold'
    | 'margin'
    | 'periodMs'
    | 'offlineAfterPeriods'
    | 'maxHops'
    | 'peerChoice'
    | 'forwardLegacy'
    | 'sessions'
    | 'dedicated'
    | 'reporterThread'
    | 'takeover'
    | 'takeoverOnLeave'
    | 'reclaimTimeoutMs'
    | 'maxLoopDelayMs'
    | 'drainGraceMs'
  >
> & { advertise?: string; nats: string[]; services?: string[]; clusterKey?: ClusterKey; takeoverAddresses?: string[] } & Pick<
    BrokerOptions,
    'exchange' | 'serverCredentials' | 'logger' | 'meters' | 'natsOptions' | 'onAdopt' | 'onRelease' | 'healthProbe' | 'tls' | 'natsAuth' | 'peerCredentials'
  >;

const hostPort = z.string().refine(
  (v) => {
    try {
      parseHostPort(v);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be host:port' },
);
const pattern = z.string().refine(isMethodPattern, { message: 'must be pkg.Service/Method, pkg.Service/* or *' });
const patterns = z.union([pattern, z.array(pattern).min(1)]);

/** Schema of a session rule. */
export const sessionRuleSchema = z
  .object({ enter: pattern, within: patterns, exit: patterns, idleMs: z.number().int().min(100).max(86_400_000).optional() })
  .strict();

/** Schema of the dedicated-home rules. */
export const dedicatedSchema = z.record(pattern, z.array(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be node ids')).min(1));

const natsUrl = z.string().regex(/^(nats|tls|ws|wss):\/\/[^\s,]+$|^[A-Za-z0-9.-]+:\d+$/, 'must be a NATS URL');

/** The schema of the tunable values (shared with the CLI and runtime config). */
export const tunables = {
  capacity: z.number().int().min(1).max(1_000_000),
  maxQueue: z.number().int().min(0).max(10_000_000),
  threshold: z.number().min(0).max(1),
  margin: z.number().min(0).max(1),
  periodMs: z.number().int().min(10).max(60_000),
  offlineAfterPeriods: z.number().int().min(2).max(1000),
  maxHops: z.number().int().min(0).max(16),
  peerChoice: z.string().refine((n) => peerChoiceNames().includes(n), { message: `must be one of ${peerChoiceNames().join(', ')}` }),
};

const schema = z
  .object({
    nodeId: z.string().refine(isValidNodeId, { message: 'must be 1-64 letters, digits, _ or -' }),
    listen: hostPort.default('127.0.0.1:0'),
    advertise: hostPort.optional(),
    cluster: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -')
      .default(DEFAULT_CLUSTER),
    nats: z
      .union([z.string(), z.array(z.string())])
      .transform((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v))
      .pipe(z.array(natsUrl))
      .default([]),
    capacity: tunables.capacity.default(DEFAULT_CAPACITY),
    maxQueue: tunables.maxQueue.optional(),
    threshold: tunables.threshold.default(DEFAULT_THRESHOLD),
    margin: tunables.margin.default(DEFAULT_MARGIN),
    periodMs: tunables.periodMs.default(DEFAULT_PERIOD_MS),
    offlineAfterPeriods: tunables.offlineAfterPeriods.default(DEFAULT_OFFLINE_AFTER_PERIODS),
    maxHops: tunables.maxHops.default(DEFAULT_MAX_HOPS),
    peerChoice: tunables.peerChoice.default(DEFAULT_PEER_CHOICE),
    meters: z.array(z.any()).optional(),
    services: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]*$/, 'must be full service names like pkg.Service')).optional(),
    forwardLegacy: z.boolean().default(false),
    reporterThread: z.boolean().default(true),
    takeover: z.boolean().default(true),
    takeoverOnLeave: z.boolean().default(false),
    takeoverAddresses: z.array(z.string().refine(isCidr, { message: 'must be IP addresses or CIDR ranges like 10.0.5.0/24' })).optional(),
    onAdopt: z.string().min(1).optional(),
    onRelease: z.string().min(1).optional(),
    reclaimTimeoutMs: z.number().int().min(0).max(3_600_000).default(DEFAULT_RECLAIM_TIMEOUT_MS),
    healthProbe: z.function().optional(),
    maxLoopDelayMs: z.number().int().min(10).max(600_000).default(DEFAULT_MAX_LOOP_DELAY_MS),
    drainGraceMs: z.number().int().min(0).max(3_600_000).default(DEFAULT_DRAIN_GRACE_MS),
    sessions: z.array(sessionRuleSchema).default([]),
    dedicated: dedicatedSchema.default({}),
    exchange: z.any().optional(),
    natsOptions: z.any().optional(),
    serverCredentials: z.any().optional(),
    peerCredentials: z.any().optional(),
    tls: z.object({ certFile: z.string().min(1), keyFile: z.string().min(1), caFile: z.string().min(1).optional() }).strict().optional(),
    natsAuth: natsAuthSchema.optional(),
    clusterKeyFile: z.string().min(1).optional(),
    clusterKey: z.union([z.string(), z.custom<ClusterKey>((v) => v instanceof ClusterKey, 'must be a key file\'s text or a ClusterKey')]).optional(),
    logger: z.any().optional(),
  })
  .strict();

/** Validates options and applies defaults; a bad value throws a ConfigError naming the field. */
export function parseBrokerOptions(input: BrokerOptions): ResolvedBrokerOptions {
  const r = schema.safeParse(input);
  if (!r.success) throw toConfigError(r.error);
  const o = r.data;
  // Files are read now, so a bad path or key stops the start with the option's name.
  if (o.tls) loadTls(o.tls);
  natsConnectionOptions(o.natsAuth);
  const { clusterKeyFile, clusterKey, ...rest } = o;
  if (clusterKeyFile !== undefined && clusterKey !== undefined) throw new ConfigError('clusterKeyFile', "give the cluster key once: 'clusterKey' or 'clusterKeyFile'");
  const key =
    clusterKeyFile !== undefined
      ? ClusterKey.fromFile(clusterKeyFile)
      : typeof clusterKey === 'string'
        ? ClusterKey.parse(clusterKey, 'clusterKey')
        : clusterKey;
  return { ...rest, clusterKey: key, maxQueue: o.maxQueue ?? 4 * o.capacity } as ResolvedBrokerOptions;
}

/** Turns the first zod issue into a ConfigError with the field's path. */
export function toConfigError(error: z.ZodError, rename: (key: string) => string = (k) => k): ConfigError {
  const issue = error.issues[0];
  const field =
    issue.code === 'unrecognized_keys'
      ? rename(String(issue.keys[0]))
      : issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : (i > 0 ? '.' : '') + rename(String(p)))).join('');
  const message = issue.code === 'unrecognized_keys' ? 'is not a known option' : issue.message;
  return new ConfigError(field || '(options)', message);
}

/** Schema of the values `peerbroker config set` may change at run time. */
export const runtimeSchema = z
  .object({
    threshold: tunables.threshold,
    margin: tunables.margin,
    periodMs: tunables.periodMs,
    maxHops: tunables.maxHops,
    peerChoice: tunables.peerChoice,
    forwardLegacy: z.boolean(),
    sessions: z.array(sessionRuleSchema),
    dedicated: dedicatedSchema,
  })
  .partial()
  .strict();

/** Runtime values, checked. */
export type RuntimeConfig = z.infer<typeof runtimeSchema>;

/** Validates runtime values; a bad one throws a ConfigError naming the field. */
export function parseRuntimeValues(values: unknown, rename?: (key: string) => string): RuntimeConfig {
  const r = runtimeSchema.safeParse(values);
  if (!r.success) throw toConfigError(r.error, rename);
  return r.data;
}
