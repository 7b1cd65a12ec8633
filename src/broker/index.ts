export { Broker, inProcessBus } from './broker';
export { PROTO_LOADER_OPTIONS, brokerProto, type MemberInfo } from './broker-service';
export {
  parseBrokerOptions,
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
} from './options';
