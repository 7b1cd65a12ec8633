/** peerbroker: a peer-to-peer load-balancing gRPC object broker. */
export * from './broker';
export * from './client';
export { ChannelPool, PROTO_LOADER_OPTIONS, brokerProto, type MemberInfo } from './transport';
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
