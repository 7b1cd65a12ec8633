import { status } from '@grpc/grpc-js';

/** Base class of peerbroker's errors: a gRPC status code where one maps, and the cause. */
export class PeerbrokerError extends Error {
  /** gRPC status code a client sees for this error. */
  readonly code: status;
  constructor(message: string, code: status = status.INTERNAL, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A bad option or config value, found before anything started. */
export class ConfigError extends PeerbrokerError {
  /** The option's name, e.g. `threshold` or `nats[1]`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`invalid config: '${field}': ${message}`, status.INVALID_ARGUMENT);
    this.field = field;
  }
}

/** A redirect the stub cannot or will not follow. */
export class RedirectError extends PeerbrokerError {}
