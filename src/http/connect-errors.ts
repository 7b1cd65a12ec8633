import { status } from '@grpc/grpc-js';

/** Connect's code names, by gRPC status number (connectrpc.com/docs/protocol#error-codes). */
const CODE_NAMES: readonly string[] = [
  'ok',
  'canceled',
  'unknown',
  'invalid_argument',
  'deadline_exceeded',
  'not_found',
  'already_exists',
  'permission_denied',
  'resource_exhausted',
  'failed_precondition',
  'aborted',
  'out_of_range',
  'unimplemented',
  'internal',
  'unavailable',
  'data_loss',
  'unauthenticated',
];

/** HTTP status of each code, as Connect's spec maps them (499: the client went away). */
const HTTP_STATUS: readonly number[] = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401];

/** The Connect name of a gRPC status (`invalid_argument`); `unknown` for numbers outside the set. */
export function connectCode(code: number): string {
  return CODE_NAMES[code] ?? 'unknown';
}

/** The HTTP status Connect gives a gRPC status. */
export function httpStatusOf(code: number): number {
  return HTTP_STATUS[code] ?? 500;
}

/** An error answered over HTTP: a gRPC status, its message, and the HTTP status when not Connect's (413, 404, 415). */
export class HttpCallError extends Error {
  constructor(
    readonly code: status,
    message: string,
    readonly httpStatus = httpStatusOf(code),
  ) {
    super(message);
    this.name = 'HttpCallError';
  }
}

/** Connect's error object: `{code: 'invalid_argument', message}`. */
export function connectError(code: number, message: string): { code: string; message: string } {
  return { code: connectCode(code), message };
}

/** Connect's error body: `{"code":"invalid_argument","message":"..."}`. */
export function errorBody(code: number, message: string): string {
  return JSON.stringify(connectError(code, message));
}

/** The text of a gRPC error as a client reads it: its details, else its message. */
export function messageOf(err: { details?: string; message?: string }): string {
  return err.details || err.message || 'peerbroker: the call failed';
}
