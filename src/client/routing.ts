import type { StatusObject } from '@grpc/grpc-js';

/**
 * Where a call's first attempt goes, and what each answer teaches: the one place the stub's
 * routing is decided. Every attempt of every call kind goes through `FollowingCall`, which
 * asks `firstEndpoint` once per call and tells `onAnswer` every attempt's status and
 * trailers, redirects included. Today calls start at the origin and answers teach nothing
 * beyond the redirect itself; a routing plan per service (learned from load or routing
 * advice in trailers) replaces `OriginRouting`.
 */
export interface Routing {
  /** The endpoint of the first attempt of a call of `path` (`/pkg.Service/Method`). */
  firstEndpoint(path: string): string;
  /** The answer (status, details, trailers) of one attempt of a call of `path`, sent by `endpoint`. */
  onAnswer(path: string, endpoint: string, answer: StatusObject): void;
}

/** Every call starts at the origin (the first configured endpoint); answers are not read. */
export class OriginRouting implements Routing {
  constructor(private readonly origin: string) {}

  firstEndpoint(): string {
    return this.origin;
  }

  onAnswer(): void {}
}
