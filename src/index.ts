/**
 * peerbroker: a peer-to-peer load-balancing gRPC object broker. What an application uses;
 * every name here is part of the API (the CLI's and the tests' helpers are not).
 */

// A node.
export {
  Broker,
  inProcessBus,
  parseBrokerOptions,
  sessionOf,
  METRICS_PREFIX,
  DEFAULT_CAPACITY,
  DEFAULT_CLUSTER,
  DEFAULT_MARGIN,
  DEFAULT_MAX_HOPS,
  DEFAULT_OFFLINE_AFTER_PERIODS,
  DEFAULT_PEER_CHOICE,
  DEFAULT_PERIOD_MS,
  DEFAULT_THRESHOLD,
  DEFAULT_KEEPALIVE_TIME_MS,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
  DEFAULT_MAX_CONCURRENT_STREAMS,
  DEFAULT_MAX_CONNECTION_IDLE_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
  DEFAULT_MAX_SESSION_MEMORY_MB,
  type BrokerOptions,
  type ResolvedBrokerOptions,
  type RuntimeConfig,
  type MetricsOptions,
  type SessionEndReason,
  type SessionInfo,
  type TlsFiles,
} from './broker';

// The stub.
export {
  createClient,
  credentials,
  DEFAULT_MAX_FAILOVERS,
  DEFAULT_MAX_HELD_MESSAGES,
  DEFAULT_MAX_REDIRECTS,
  DEFAULT_MEMBERS_REFRESH_MS,
  type BrokeredClient,
  type ClientOptions,
  type StubHandle,
  type StubStats,
} from './client';
export { ChannelPool, PROTO_LOADER_OPTIONS, brokerProto, type MemberInfo } from './transport';

// The control plane, for custom exchanges, meters and tools that read reports.
export {
  PeerView,
  NatsExchange,
  InProcessBus,
  loadSubject,
  registerLoadMeter,
  ClusterKey,
  type Exchange,
  type LoadMeter,
  type LoadReport,
  type NatsAuthOptions,
} from './cluster';
export { registerPeerChoice, peerChoiceNames, type PeerChoice, type Decision } from './policy';
export { PeerbrokerError, ConfigError } from './errors';
export * from './wire';
export { PROTO_DIR } from './proto-path';
