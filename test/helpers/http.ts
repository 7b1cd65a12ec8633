/** HTTP calls to a node's HTTP listener, as a user's code would make them (Node's fetch). */

/** What an HTTP call returned. */
export interface HttpAnswer<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: T;
  text: string;
  /** The URL that answered (after any redirect fetch followed). */
  url: string;
  redirected: boolean;
}

/** Options of one call: extra headers, and whether fetch follows redirects (default: it does). */
export interface HttpCallOptions {
  headers?: Record<string, string>;
  redirect?: 'follow' | 'manual';
  /** Body as given (not JSON-encoded), e.g. bad JSON. */
  rawBody?: string | Buffer;
}

/** POSTs `body` as JSON to `<baseUrl><path>` (path `/pkg.Service/Method`). */
export async function postJson<T = Record<string, unknown>>(baseUrl: string, path: string, body: unknown, o: HttpCallOptions = {}): Promise<HttpAnswer<T>> {
  const res = await fetch(baseUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...o.headers },
    body: o.rawBody === undefined ? JSON.stringify(body) : typeof o.rawBody === 'string' ? o.rawBody : new Uint8Array(o.rawBody),
    redirect: o.redirect ?? 'follow',
  });
  const text = await res.text();
  let json: T;
  try {
    json = JSON.parse(text) as T;
  } catch {
    json = undefined as T;
  }
  return { status: res.status, headers: res.headers, json, text, url: res.url, redirected: res.redirected };
}

/** Calls a server-streaming method and reads its newline-delimited JSON answer, one object a line. */
export async function postNdjson(baseUrl: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; lines: Array<Record<string, unknown>> }> {
  const res = await fetch(baseUrl + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  const lines = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { status: res.status, headers: res.headers, lines };
}
