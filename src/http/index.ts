// The HTTP part's door: the listener the broker starts, its limits, the JSON codec.
export { HttpGateway, type HttpGatewayOptions } from './http-gateway';
export { ClusterFeed, FEED_TICK_MS, type ClusterSnapshot, type FlowRow, type NodeRow, type SelfSample } from './cluster-feed';
export { DEFAULT_HTTP_MAX_BODY_BYTES, MAX_HTTP_BODY_BYTES } from './limits';
export { methodCodec, type MethodCodec } from './json-codec';
export { connectCode, grpcCodeOf, httpStatusOf, HttpCallError } from './connect-errors';
