// The HTTP part's door: the listener the broker starts, what it samples of the node, its body limits.
export { HttpGateway, type HttpGatewayOptions } from './http-gateway';
export type { SelfSample } from './cluster-feed';
export { DEFAULT_HTTP_MAX_BODY_BYTES, MAX_HTTP_BODY_BYTES } from './limits';
