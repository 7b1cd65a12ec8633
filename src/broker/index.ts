export { Broker, inProcessBus } from './broker';
export {
  parseBrokerOptions,
  parseRuntimeValues,
  toConfigError,
  tunables,
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
} from './options';
export type { TlsFiles } from './tls';
