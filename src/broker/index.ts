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
