// What the broker and the stub share to reach nodes: pooled channels and the Broker service's proto.
export { ChannelPool, PooledChannel, DEFAULT_MAX_CHANNELS, DEFAULT_CHANNEL_IDLE_MS, type ChannelPoolOptions } from './channel-pool';
export { brokerProto, PROTO_LOADER_OPTIONS, type MemberInfo } from './broker-proto';
