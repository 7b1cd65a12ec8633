import * as grpc from '@grpc/grpc-js';
import { InterceptingCall, Metadata, status, type Interceptor, type InterceptorOptions, type StatusObject } from '@grpc/grpc-js';
import type { InterceptingListener } from '@grpc/grpc-js/build/src/call-interface';
import { MD_FOLLOW, MD_HOPS, MD_LOCATION, MD_LOCATION_NODE, MD_SESSION } from '../wire';
import type { ChannelPool } from '../transport';
import type { Membership } from './membership';

/** Default number of redirects a call follows before the stub gives up. */
export const DEFAULT_MAX_REDIRECTS = 3;

/** What the redirect interceptor needs of its stub. */
export interface StubContext {
  pool: ChannelPool;
  members: Membership;
  maxRedirects: number;
  /** Counts redirects followed, for tests and metrics. */
  stats: { redirectsFollowed: number; redirectsRefused: number; failovers: number };
  /** The session this client is in: the token is sent on every call while set. */
  session: { token: string };
  /** Messages of a streaming-request call held before the node accepts. */
  maxHeldMessages: number;
  /** The endpoint first calls go to. */
  origin: string;
  /** Paths (`/pkg.Service/Method`) safe to run twice: retried on another member after a mid-call failure. */
  idempotent: ReadonlySet<string>;
  /** Other members a call may be retried on when its node is unreachable. */
  maxFailovers: number;
}

/** An attempt on another endpoint: what the interceptor needs to cancel it. */
interface Attempt {
  cancel(): void;
}

/**
 * Follows peerbroker redirects for unary and server-streaming calls: the call is
 * re-sent to the named member with the same message, metadata and deadline, on
 * the pooled channel of that endpoint. Other call types pass through unchanged.
 */
export function redirectInterceptor(ctx: StubContext): Interceptor {
  return (options: InterceptorOptions, nextCall) => {
    const def = options.method_definition;
    if (def.requestStream) return new InterceptingCall(nextCall(options));

    let metadata: Metadata;
    let request: unknown;
    let upper: InterceptingListener;
    let attempt: Attempt | undefined;
    let finished = false;
    // Messages of a streamed answer already passed up (a retry after one would repeat them).
    let delivered = 0;
    let tried: Set<string> | undefined; // made on the first failover only
    const idempotent = ctx.idempotent.has(def.path);

    // A node that cannot be reached gets the call retried on another member when that is
    // safe: the call was never sent, or the method is idempotent and nothing came back yet.
    const failed = (st: StatusObject, endpoint: string, hops: number): boolean => {
      if (st.code !== status.UNAVAILABLE || finished) return false;
      const step = afterUnavailable(ctx, st, endpoint, (tried ??= new Set<string>()), idempotent && delivered === 0);
      if (step.kind === 'give-up') return false;
      if (step.kind === 'fail') deliver(step.status);
      else attempt = send(step.endpoint, hops);
      return true;
    };

    const deliver = (st: StatusObject) => {
      if (finished) return;
      finished = true;
      upper.onReceiveStatus(st);
    };

    const follow = (st: StatusObject, from: string | undefined, hops: number): void =>
      followRedirect(ctx, st, from, hops, () => finished, deliver, (location) => (attempt = send(location, hops)));

    const send = (endpoint: string, hops: number): Attempt => {
      const md = withHops(metadata, hops);
      const client = ctx.pool.client(endpoint);
      const callOptions: grpc.CallOptions = { deadline: options.deadline, credentials: options.credentials };
      const onStatus = (st: StatusObject) => {
        if (isRedirect(st)) follow(st, endpoint, hops + 1);
        else if (!failed(st, endpoint, hops)) deliver(st);
      };
      const onMetadata = (m: Metadata) => {
        if (!finished && m.get(MD_LOCATION).length === 0) {
          takeSession(ctx, m);
          upper.onReceiveMetadata(m);
        }
      };
      if (!def.responseStream) {
        let value: unknown;
        const call = client.makeUnaryRequest(
          def.path,
          def.requestSerialize,
          def.responseDeserialize,
          request,
          md,
          callOptions,
          (_err, v) => (value = v),
        );
        call.on('metadata', onMetadata);
        call.on('status', (st) => {
          if (st.code === status.OK && !finished) upper.onReceiveMessage(value);
          onStatus(st);
        });
        return call;
      }
      const call = client.makeServerStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, request, md, callOptions);
      call.on('metadata', onMetadata);
      call.on('data', (m) => {
        delivered++;
        if (!finished) upper.onReceiveMessage(m);
      });
      call.on('error', () => {}); // the same outcome arrives as 'status'
      call.on('status', onStatus);
      return call;
    };

    return new InterceptingCall(nextCall(options), {
      start(md, listener, next) {
        upper = listener;
        markFollowing(ctx, md);
        metadata = md;
        next(md, {
          onReceiveMetadata(m, nextListener) {
            if (m.get(MD_LOCATION).length === 0) {
              takeSession(ctx, m);
              nextListener(m);
            }
          },
          onReceiveMessage(m, nextListener) {
            // grpc-js passes unary calls an empty message on failure too: count streamed ones only.
            if (def.responseStream && m != null) delivered++;
            nextListener(m);
          },
          onReceiveStatus(st, nextListener) {
            if (isRedirect(st)) follow(st, undefined, 1);
            else if (failed(st, ctx.origin, 0)) return;
            else if (!finished) {
              finished = true;
              nextListener(st);
            }
          },
        });
      },
      sendMessage(message, next) {
        request = message;
        next(message);
      },
      cancel(next) {
        attempt?.cancel();
        next();
        // Between a redirect and the next attempt no call is live to report CANCELLED; without
        // this the next attempt would still be sent and run after the application cancelled.
        process.nextTick(() => deliver(cancelledStatus()));
      },
    });
  };
}

/** True when the status is a peerbroker redirect (not a plain RESOURCE_EXHAUSTED). */
export function isRedirect(st: StatusObject): boolean {
  return st.code === status.RESOURCE_EXHAUSTED && st.metadata.get(MD_LOCATION).length > 0;
}

/** True when grpc-js says the call never reached a server (no connection could be made). */
export function neverSent(st: StatusObject): boolean {
  return st.code === status.UNAVAILABLE && /No connection established/i.test(st.details);
}

/** What follows an `UNAVAILABLE` answer: a retry elsewhere, a reworded failure, or the status as it is. */
export type FailoverStep = { kind: 'retry'; endpoint: string } | { kind: 'fail'; status: StatusObject } | { kind: 'give-up' };

/**
 * After `endpoint` answered `st` (`UNAVAILABLE`): retry on another member when the call was
 * never sent, or when `retryMidCall` (idempotent, nothing delivered yet); otherwise fail it
 * saying it may or may not have run. `tried` collects the endpoints that failed.
 */
export function afterUnavailable(ctx: StubContext, st: StatusObject, endpoint: string, tried: Set<string>, retryMidCall: boolean): FailoverStep {
  tried.add(endpoint);
  if (!neverSent(st) && !retryMidCall) {
    return {
      kind: 'fail',
      status: {
        ...st,
        details:
          `peerbroker: lost the connection to ${endpoint} during the call; it may or may not have run ` +
          `(not retried: the method is not declared idempotent): ${st.details}`,
      },
    };
  }
  const next = failoverTarget(ctx, tried);
  return next ? { kind: 'retry', endpoint: next } : { kind: 'give-up' };
}

/** The error grpc-js gives a callback for a status (same message shape). */
export function serviceError(st: StatusObject): grpc.ServiceError {
  return Object.assign(new Error(`${st.code} ${status[st.code]}: ${st.details}`), st) as grpc.ServiceError;
}

let rotation = 0;
/**
 * The member to retry a call on after the endpoints in `tried` failed, rotating so
 * failovers spread over the members; undefined when none is left or the limit is reached.
 */
export function failoverTarget(ctx: StubContext, tried: ReadonlySet<string>): string | undefined {
  if (tried.size > ctx.maxFailovers) return undefined;
  const all = ctx.members.all().filter((e) => !tried.has(e));
  if (all.length === 0) return undefined;
  ctx.stats.failovers++;
  return all[rotation++ % all.length];
}

/**
 * Follows the redirect in `st` (the call's `hops`-th): `go(location)` for a member of the
 * cluster, at once when known, after one member-list refresh otherwise; `fail(status)` when
 * the stub gives up (too many redirects) or refuses (not a member: the call did not run).
 */
export function followRedirect(
  ctx: StubContext,
  st: StatusObject,
  from: string | undefined,
  hops: number,
  done: () => boolean,
  fail: (st: StatusObject) => void,
  go: (location: string) => void,
): void {
  const location = String(st.metadata.get(MD_LOCATION)[0]);
  if (hops > ctx.maxRedirects) {
    return fail({ ...st, details: `peerbroker: gave up after ${ctx.maxRedirects} redirects; last: ${st.details}` });
  }
  const proceed = (ok: boolean) => {
    if (done()) return;
    if (!ok) {
      ctx.stats.redirectsRefused++;
      const node = String(st.metadata.get(MD_LOCATION_NODE)[0] ?? '?');
      return fail({
        code: status.UNAVAILABLE,
        details: `peerbroker: refused redirect to '${location}' (node '${node}'): not a known member of the cluster; the call did not run`,
        metadata: new Metadata(),
      });
    }
    ctx.stats.redirectsFollowed++;
    go(location);
  };
  if (ctx.members.has(location)) proceed(true);
  else void checkMember(ctx, location, from).then(proceed);
}

/** A session header starts (token) or ends (empty value) this client's session. */
export function takeSession(ctx: StubContext, m: Metadata): void {
  const v = m.get(MD_SESSION);
  if (v.length > 0) ctx.session.token = String(v[0]);
}

/** Marks outgoing metadata so the node redirects rather than proxies, and sends the session token while in one. */
export function markFollowing(ctx: StubContext, md: Metadata): void {
  md.set(MD_FOLLOW, '1');
  if (ctx.session.token) md.set(MD_SESSION, ctx.session.token);
}

/** A copy of `md` with the redirect count set: each attempt sends its own, the call's metadata stays as it was. */
export function withHops(md: Metadata, hops: number): Metadata {
  const copy = md.clone();
  copy.set(MD_HOPS, String(hops));
  return copy;
}

/** The status of a call the application cancelled, as grpc-js words it; new each time, as listeners may change its metadata. */
export function cancelledStatus(): StatusObject {
  return { code: status.CANCELLED, details: 'Cancelled on client', metadata: new Metadata() };
}

/** True when `endpoint` is a member, refreshing the member list once if it is not. */
export async function checkMember(ctx: StubContext, endpoint: string, from: string | undefined): Promise<boolean> {
  if (ctx.members.has(endpoint)) return true;
  // A node that joined since the last refresh: ask again, once, at most every 200 ms.
  await ctx.members.refreshIfOlder(200, from).catch(() => {});
  return ctx.members.has(endpoint);
}
