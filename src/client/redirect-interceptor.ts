import * as grpc from '@grpc/grpc-js';
import { InterceptingCall, Metadata, status, type Interceptor, type InterceptorOptions, type StatusObject } from '@grpc/grpc-js';
import type { InterceptingListener } from '@grpc/grpc-js/build/src/call-interface';
import { MD_FOLLOW, MD_HOPS, MD_LOCATION, MD_LOCATION_NODE, MD_SESSION } from '../wire';
import type { ChannelPool } from './channel-pool';
import type { Membership } from './membership';

/** Default number of redirects a call follows before the stub gives up. */
export const DEFAULT_MAX_REDIRECTS = 3;

/** What the redirect interceptor needs of its stub. */
export interface StubContext {
  pool: ChannelPool;
  members: Membership;
  maxRedirects: number;
  /** Counts redirects followed, for tests and metrics. */
  stats: { redirectsFollowed: number; redirectsRefused: number };
  /** The session this client is in: the token is sent on every call while set. */
  session: { token: string };
  /** Messages of a streaming-request call held before the node accepts. */
  maxHeldMessages: number;
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

    const deliver = (st: StatusObject) => {
      if (finished) return;
      finished = true;
      upper.onReceiveStatus(st);
    };

    const follow = (st: StatusObject, from: string | undefined, hops: number): void => {
      const location = st.metadata.get(MD_LOCATION)[0] as string;
      const locationNode = (st.metadata.get(MD_LOCATION_NODE)[0] as string | undefined) ?? '?';
      if (hops > ctx.maxRedirects) {
        return deliver({
          ...st,
          details: `peerbroker: gave up after ${ctx.maxRedirects} redirects; last: ${st.details}`,
        });
      }
      void checkMember(ctx, location, from).then((ok) => {
        if (finished) return;
        if (!ok) {
          ctx.stats.redirectsRefused++;
          return deliver({
            code: status.UNAVAILABLE,
            details:
              `peerbroker: refused redirect to '${location}' (node '${locationNode}'): ` +
              'not a known member of the cluster; the call did not run',
            metadata: new Metadata(),
          });
        }
        ctx.stats.redirectsFollowed++;
        attempt = send(location, hops);
      });
    };

    const send = (endpoint: string, hops: number): Attempt => {
      const md = metadata.clone();
      md.set(MD_HOPS, String(hops));
      const client = ctx.pool.client(endpoint);
      const callOptions: grpc.CallOptions = { deadline: options.deadline, credentials: options.credentials };
      const onStatus = (st: StatusObject) => {
        if (isRedirect(st)) follow(st, endpoint, hops + 1);
        else deliver(st);
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
        if (!finished) upper.onReceiveMessage(m);
      });
      call.on('error', () => {}); // the same outcome arrives as 'status'
      call.on('status', onStatus);
      return call;
    };

    return new InterceptingCall(nextCall(options), {
      start(md, listener, next) {
        upper = listener;
        md.set(MD_FOLLOW, '1');
        if (ctx.session.token) md.set(MD_SESSION, ctx.session.token);
        metadata = md;
        next(md, {
          onReceiveMetadata(m, nextListener) {
            if (m.get(MD_LOCATION).length === 0) {
              takeSession(ctx, m);
              nextListener(m);
            }
          },
          onReceiveMessage(m, nextListener) {
            nextListener(m);
          },
          onReceiveStatus(st, nextListener) {
            if (isRedirect(st)) follow(st, undefined, 1);
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
      },
    });
  };
}

/** True when the status is a peerbroker redirect (not a plain RESOURCE_EXHAUSTED). */
export function isRedirect(st: StatusObject): boolean {
  return st.code === status.RESOURCE_EXHAUSTED && st.metadata.get(MD_LOCATION).length > 0;
}

/** A session header starts (token) or ends (empty value) this client's session. */
function takeSession(ctx: StubContext, m: Metadata): void {
  const v = m.get(MD_SESSION);
  if (v.length > 0) ctx.session.token = String(v[0]);
}

/** True when `endpoint` is a member, refreshing the member list once if it is not. */
export async function checkMember(ctx: StubContext, endpoint: string, from: string | undefined): Promise<boolean> {
  if (ctx.members.has(endpoint)) return true;
  // A node that joined since the last refresh: ask again, once, at most every 200 ms.
  await ctx.members.refreshIfOlder(200, from).catch(() => {});
  return ctx.members.has(endpoint);
}
