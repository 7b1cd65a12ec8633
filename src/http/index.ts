// The HTTP part's door: the listener the broker starts, its limits, the JSON codec.
export { DEFAULT_HTTP_MAX_BODY_BYTES, MAX_HTTP_BODY_BYTES } from './limits';
export { methodCodec, type MethodCodec } from './json-codec';
export { connectCode, httpStatusOf, HttpCallError } from './connect-errors';
