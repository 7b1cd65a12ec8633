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
  /** What is wrong with it, without the field's name. */
  readonly reason: string;
  constructor(field: string, reason: string) {
    super(`invalid config: '${field}': ${reason}`, status.INVALID_ARGUMENT);
    this.field = field;
    this.reason = reason;
  }

  /** The same error under another name for the field (a flag instead of an option). */
  renamed(field: string): ConfigError {
    return new ConfigError(field, this.reason);
  }
}
