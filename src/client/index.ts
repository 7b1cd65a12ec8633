// The stub's door: what the library's users get (src/index.ts).
export { createClient, type BrokeredClient, type ClientOptions, type StubHandle } from './create-client';
export { DEFAULT_MEMBERS_REFRESH_MS } from './membership';
export { DEFAULT_MAX_REDIRECTS, DEFAULT_MAX_FAILOVERS, DEFAULT_MAX_HELD_MESSAGES, type StubStats } from './stub-context';
/** grpc-js's channel credentials factory, of the copy of grpc-js the stub uses (`ClientOptions.credentials`). */
export { credentials } from '@grpc/grpc-js';
