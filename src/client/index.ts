export { createClient, idempotentPaths, type BrokeredClient, type ClientOptions, type StubHandle } from './create-client';
export { Membership, grpcMembersAsk, DEFAULT_MEMBERS_REFRESH_MS, DEFAULT_MEMBERS_ASK_MS, DEFAULT_MAX_LEARNED_MEMBERS, type MembersAsk, type MembershipOptions } from './membership';
export { isRedirect } from './outcome';
export { AdvisedRouting, type Routing } from './routing';
export { DEFAULT_MAX_REDIRECTS, DEFAULT_MAX_FAILOVERS, DEFAULT_MAX_HELD_MESSAGES, type StubContext, type StubStats } from './stub-context';
/** grpc-js's channel credentials factory, of the copy of grpc-js the stub uses (`ClientOptions.credentials`). */
export { credentials } from '@grpc/grpc-js';
