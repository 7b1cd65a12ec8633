import { Metadata, type CallOptions, type ServiceError } from '@grpc/grpc-js';
import { MD_ADVISE_ME, MD_FOLLOW, MD_HOPS, MD_SESSION } from '../wire';

/**
 * The parts of grpc-js's Metadata the stub reads. An application that depends on another
 * version of @grpc/grpc-js hands the stub Metadata of its own copy, which `instanceof
 * Metadata` does not recognise: such values are duck-typed, and copied into this copy's.
 */
export interface MetadataLike {
  get(key: string): unknown[];
  set(key: string, value: string | Buffer): void;
  toJSON(): Record<string, Array<string | Buffer>>;
  getOptions?(): object;
}

/** True when `v` is a Metadata of any copy of grpc-js. */
export function isMetadata(v: unknown): v is MetadataLike {
  if (v instanceof Metadata) return true;
  const m = v as Partial<MetadataLike> | null;
  return typeof m === 'object' && m !== null && typeof m.get === 'function' && typeof m.set === 'function' && typeof m.toJSON === 'function';
}

/**
 * The outgoing metadata of a call: a copy of the caller's (which is never written into, as an
 * application may reuse it for other calls and clients), marked so the node redirects rather
 * than proxies (`follow`: 2 while the stub spreads by advice), asking for advice when
 * `askAdvice`, with this client's session token while it is in one.
 */
export function followingMetadata(md: MetadataLike | undefined, sessionToken: string, follow: '1' | '2' = '1', askAdvice = false): Metadata {
  const own = md === undefined ? new Metadata() : md instanceof Metadata ? md.clone() : copyForeign(md);
  own.set(MD_FOLLOW, follow);
  if (askAdvice) own.set(MD_ADVISE_ME, '1');
  if (sessionToken) own.set(MD_SESSION, sessionToken);
  return own;
}

function copyForeign(md: MetadataLike): Metadata {
  const own = new Metadata(md.getOptions?.());
  for (const [key, values] of Object.entries(md.toJSON())) for (const v of values) own.add(key, v);
  return own;
}

/** A copy of `md` with the redirect count set: each attempt after the first sends its own. */
export function withHops(md: Metadata, hops: number): Metadata {
  const copy = md.clone();
  copy.set(MD_HOPS, String(hops));
  return copy;
}

/**
 * A session header in response headers starts (token) or ends (empty value) the client's
 * session; `endpoint`, the node that answered, owns a session it starts.
 */
export function takeSession(session: { token: string; endpoint?: string }, headers: Metadata, endpoint: string): void {
  const v = headers.get(MD_SESSION);
  if (v.length === 0) return;
  session.token = String(v[0]);
  session.endpoint = session.token ? endpoint : undefined;
}

/** The optional (metadata, options, callback) arguments of a generated method, told apart by shape. */
export function callArgs(args: unknown[]): {
  metadata?: MetadataLike;
  options: CallOptions;
  callback?: (err: ServiceError | null, value?: unknown) => void;
} {
  let metadata: MetadataLike | undefined;
  let options: CallOptions = {};
  let callback: ((err: ServiceError | null, value?: unknown) => void) | undefined;
  for (const a of args) {
    if (typeof a === 'function') callback = a as typeof callback;
    else if (isMetadata(a)) metadata = a;
    else if (a && typeof a === 'object') options = a as CallOptions;
  }
  return { metadata, options, callback };
}
