// What the broker and the stub share to reach nodes: pooled channels and the Broker service's proto.
export { ChannelPool } from './channel-pool';
export { brokerProto, PROTO_LOADER_OPTIONS, type MemberInfo } from './broker-proto';
