export { Broker, inProcessBus } from './broker';
export {
  parseBrokerOptions,
  parseRuntimeValues,
  toConfigError,
  fieldPath,
  brokerOptionsSchema,
  runtimeSchema,
  RUNTIME_KEYS,
  DEFAULT_CAPACITY,
  DEFAULT_CLUSTER,
  DEFAULT_MARGIN,
  DEFAULT_MAX_HOPS,
  DEFAULT_OFFLINE_AFTER_PERIODS,
  DEFAULT_PEER_CHOICE,
  DEFAULT_PERIOD_MS,
  DEFAULT_THRESHOLD,
  type BrokerOptions,
  type ResolvedBrokerOptions,
  type RuntimeConfig,
  type RuntimeKey,
} from './options';
export { cliOptions, option, optionInfo, type CliOption, type OptionInfo, type OptionKind } from './option-info';
export type { TlsFiles } from './tls';
export { sessionOf } from './local-call';
export type { SessionEndReason, SessionInfo } from './session-table';
export { METRICS_PREFIX, type MetricsOptions } from './metrics';
export {
  DEFAULT_KEEPALIVE_TIME_MS,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
  DEFAULT_MAX_CONCURRENT_STREAMS,
  DEFAULT_MAX_CONNECTION_IDLE_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
  DEFAULT_MAX_SESSION_MEMORY_MB,
} from './server-options';
