import { Metadata, status, type StatusObject } from '@grpc/grpc-js';
import { MD_LOCATION, MD_LOCATION_NODE } from '../wire';

/** What the stub knows of a call when one of its attempts ends without OK. */
export interface AttemptFacts {
  /** The node sent response headers: it accepted the call (a redirect never has headers). */
  accepted: boolean;
  /** Every message of the request is still held: the call can be sent again in full. */
  replayable: boolean;
  /** The attempt's channel was never connected while it ran, so the request never left this process. */
  neverSent: boolean;
  /** The method is safe to run twice and nothing has been passed to the application yet. */
  idempotent: boolean;
  /** Redirects the call has followed so far. */
  hops: number;
  maxRedirects: number;
  /** The endpoint the attempt went to. */
  endpoint: string;
}

/** What follows an attempt's end: the call ends with a status, follows a redirect, or is tried on another member. */
export type NextStep =
  | { kind: 'finish'; status: StatusObject }
  | { kind: 'redirect'; location: string; node: string }
  | { kind: 'failover'; otherwise: StatusObject };

/** True when the status is a peerbroker redirect (not a plain RESOURCE_EXHAUSTED). */
export function isRedirect(st: StatusObject): boolean {
  return st.code === status.RESOURCE_EXHAUSTED && st.metadata.get(MD_LOCATION).length > 0;
}

/**
 * The step after an attempt ended with `st`. A redirect is followed while the call has redirects
 * left. An `UNAVAILABLE` call is tried on another member when that is safe: it never left, or
 * the method is idempotent; both need the request still held. Otherwise it fails saying it may
 * have run: a lost connection cannot prove the handler did not.
 */
export function nextStep(st: StatusObject, f: AttemptFacts): NextStep {
  if (!f.accepted && isRedirect(st)) {
    if (f.hops >= f.maxRedirects) {
      return { kind: 'finish', status: { ...st, details: `peerbroker: gave up after ${f.maxRedirects} redirects; last: ${st.details}` } };
    }
    return { kind: 'redirect', location: String(st.metadata.get(MD_LOCATION)[0]), node: String(st.metadata.get(MD_LOCATION_NODE)[0] ?? '?') };
  }
  if (st.code !== status.UNAVAILABLE) return { kind: 'finish', status: st };
  if (f.replayable && (f.neverSent || f.idempotent)) return { kind: 'failover', otherwise: st };
  if (f.neverSent) return { kind: 'finish', status: st };
  const details =
    `peerbroker: lost the connection to ${f.endpoint} during the call; it may or may not have run ` +
    `(not retried: the method is not declared idempotent): ${st.details}`;
  return { kind: 'finish', status: { ...st, details } };
}

let rotation = 0;
/**
 * The member to try a call on after the endpoints in `tried` failed, rotating so failovers
 * spread over the members; undefined when none is left or `maxFailovers` were tried.
 */
export function failoverTarget(members: readonly string[], tried: ReadonlySet<string>, maxFailovers: number): string | undefined {
  if (tried.size > maxFailovers) return undefined;
  const left = members.filter((e) => !tried.has(e));
  return left.length === 0 ? undefined : left[rotation++ % left.length];
}

/** The status of a call whose redirect named an endpoint that is not a member: it did not run. */
export function refusedRedirect(location: string, node: string): StatusObject {
  return {
    code: status.UNAVAILABLE,
    details: `peerbroker: refused redirect to '${location}' (node '${node}'): not a known member of the cluster; the call did not run`,
    metadata: new Metadata(),
  };
}

/** The status of a call whose deadline passed while no attempt was out (`what` the stub was doing). */
export function deadlineWhile(what: string): StatusObject {
  return { code: status.DEADLINE_EXCEEDED, details: `Deadline exceeded (peerbroker: while ${what})`, metadata: new Metadata() };
}
