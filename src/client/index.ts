export { createClient, type BrokeredClient, type ClientOptions } from './create-client';
export { Membership, DEFAULT_MEMBERS_REFRESH_MS } from './membership';
export { redirectInterceptor, isRedirect, DEFAULT_MAX_REDIRECTS, type StubContext } from './redirect-interceptor';
