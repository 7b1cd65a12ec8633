import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Metadata, status, type MethodDefinition, type sendUnaryData, type ServerErrorResponse } from '@grpc/grpc-js';
import { MD_ADVICE, MD_FOLLOW, MD_HOPS, MD_LOCATION, MD_LOCATION_NODE, MD_REASON } from '../wire';
import { connectCode, errorBody, HttpCallError, httpStatusOf } from './connect-errors';
import { HttpStreamCall, HttpUnaryCall, type CallContext } from './http-call';
import { jsonUnavailable, type MethodCodec } from './json-codec';
import { MAX_TIMEOUT_MS } from './limits';
import { readBody } from './request-body';
import { envelope, metadataObject, STREAM_CONTENT_TYPES, streamSink, type StreamFormat } from './stream-sink';

/** A hosted method as the HTTP listener serves it: its gate-wrapped handler and codec. */
export interface RpcRoute {
  method: MethodDefinition<unknown, unknown>;
  /** The handler as `addService` wrapped it: the decision runs first, as on gRPC. */
  handler: (call: unknown, callback?: sendUnaryData<unknown>) => void;
  codec: MethodCodec;
}

/** What serving a call needs of the listener. */
export interface RpcDeps {
  maxBodyBytes: number;
  /** The HTTP base URL of a member, by node id; undefined when it has no HTTP listener. */
  httpUrlOf(nodeId: string): string | undefined;
  /** Relays a call over gRPC to `endpoint` (the chosen peer has no HTTP listener). */
  forward(method: MethodDefinition<unknown, unknown>, call: unknown, endpoint: string, done?: sendUnaryData<unknown>): void;
}

type Format = 'json' | 'proto' | StreamFormat;

// Headers that describe the HTTP exchange itself, not the call: not handed to handlers as metadata.
const NOT_METADATA = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'content-length', 'content-type', 'content-encoding', 'accept-encoding', 'expect']);
const NOT_METADATA_PREFIXES = ['connect-', 'sec-', 'access-control-', 'proxy-'];

/** Serves one POST to a hosted method; every outcome is a complete HTTP answer. */
export async function serveRpc(req: IncomingMessage, res: ServerResponse, search: string, route: RpcRoute, deps: RpcDeps, base: OutgoingHttpHeaders): Promise<void> {
  const m = route.method;
  let format: Format = 'json';
  try {
    if (m.requestStream) {
      throw new HttpCallError(status.UNIMPLEMENTED, `peerbroker: '${m.path}' streams its requests; over HTTP only unary and server-streaming methods are served (call it over gRPC)`);
    }
    format = formatOf(req, m.responseStream, route.codec);
    const body = await readBody(req, deps.maxBodyBytes);
    const request = decode(format, body, route.codec);
    const ctx = contextOf(req, search, m.path);
    if (m.responseStream) serveStream(res, ctx, request, route, deps, base, format as StreamFormat);
    else serveUnary(res, ctx, request, route, deps, base, format === 'proto');
  } catch (err) {
    if (!(err instanceof HttpCallError)) throw err;
    answerError(res, base, err.httpStatus, err.code, err.message);
    // A body left unread (too large, or not read at all) is not worth keeping the connection for.
    if (!req.complete) res.once('finish', () => req.destroy());
  }
}

function formatOf(req: IncomingMessage, streamed: boolean, codec: MethodCodec): Format {
  const encoding = req.headers['content-encoding'];
  if (encoding && encoding !== 'identity') {
    throw new HttpCallError(status.UNIMPLEMENTED, `peerbroker: content-encoding '${encoding}' is not accepted; send the body uncompressed`, 415);
  }
  const version = req.headers['connect-protocol-version'];
  if (version !== undefined && version !== '1') throw new HttpCallError(status.INVALID_ARGUMENT, `peerbroker: connect-protocol-version '${version}' is not supported (only 1)`);
  const type = (req.headers['content-type'] ?? 'application/json').split(';')[0].trim().toLowerCase();
  const formats: Record<string, Format> = streamed
    ? { 'application/json': 'ndjson', 'application/connect+json': 'connect-json', 'application/connect+proto': 'connect-proto' }
    : { 'application/json': 'json', 'application/proto': 'proto' };
  const f = formats[type];
  if (!f) {
    throw new HttpCallError(
      status.INVALID_ARGUMENT,
      `peerbroker: content-type '${type}' is not served here; send ${Object.keys(formats).join(' or ')} (with curl: -H 'content-type: application/json')`,
      415,
    );
  }
  if ((f === 'json' || f === 'ndjson' || f === 'connect-json') && !codec.json) throw jsonUnavailable(codec);
  return f;
}

function decode(format: Format, body: Buffer, codec: MethodCodec): unknown {
  if (format === 'json' || format === 'ndjson') return codec.requestFromJson(body.toString('utf8'));
  if (format === 'proto') return decodeBinary(codec, body);
  // Connect streaming: the one request message in an envelope.
  if (body.length < 5 || body.readUInt32BE(1) !== body.length - 5) {
    throw new HttpCallError(status.INVALID_ARGUMENT, 'peerbroker: the body is not one Connect envelope (flags, 4-byte length, message)');
  }
  if (body[0] !== 0) throw new HttpCallError(status.UNIMPLEMENTED, `peerbroker: envelope flags ${body[0]} are not accepted (compressed messages are not)`, 415);
  const payload = body.subarray(5);
  return format === 'connect-json' ? codec.requestFromJson(payload.toString('utf8')) : decodeBinary(codec, payload);
}

function decodeBinary(codec: MethodCodec, bytes: Buffer): unknown {
  try {
    return codec.requestFromBinary(bytes);
  } catch (err) {
    throw new HttpCallError(status.INVALID_ARGUMENT, `peerbroker: the body is not a valid protobuf message: ${(err as Error).message}`);
  }
}

/** The call's metadata from the request headers; HTTP clients follow redirects unless they say `peerbroker-follow: 0`. */
function contextOf(req: IncomingMessage, search: string, path: string): CallContext {
  const md = new Metadata();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value === undefined || NOT_METADATA.has(key) || NOT_METADATA_PREFIXES.some((p) => key.startsWith(p))) continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      try {
        if (key.endsWith('-bin')) md.add(key, Buffer.from(v, 'base64'));
        else md.add(key, v);
      } catch {
        // A header that cannot be gRPC metadata (a name or value outside ASCII) is left out, unless it is ours.
        if (key.startsWith('peerbroker-')) throw new HttpCallError(status.INVALID_ARGUMENT, `peerbroker: header '${key}' has a value that is not printable ASCII`);
      }
    }
  }
  const follow = md.get(MD_FOLLOW)[0];
  if (follow !== undefined && follow !== '0' && follow !== '1' && follow !== '2') throw new HttpCallError(status.INVALID_ARGUMENT, `peerbroker: '${MD_FOLLOW}' must be 0, 1 or 2`);
  // A browser follows a 307 by itself: following is the default over HTTP.
  if (follow === undefined) md.set(MD_FOLLOW, '1');
  const hops = search === '' ? null : new URLSearchParams(search).get(MD_HOPS);
  if (hops !== null) md.set(MD_HOPS, hops);
  let deadline = Infinity;
  const timeout = String(req.headers['connect-timeout-ms'] ?? '');
  if (timeout !== '') {
    if (!/^\d{1,10}$/.test(timeout)) throw new HttpCallError(status.INVALID_ARGUMENT, `peerbroker: connect-timeout-ms '${timeout}' is not a number of milliseconds`);
    deadline = Date.now() + Math.min(Number(timeout), MAX_TIMEOUT_MS);
  }
  return { path, search, metadata: md, deadline, socket: req.socket, host: req.headers.host ?? '' };
}

/** Writes a complete error answer in Connect's unary form. */
export function answerError(res: ServerResponse, base: OutgoingHttpHeaders, httpStatus: number, code: number, message: string, extra: OutgoingHttpHeaders = {}): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(httpStatus, { ...base, ...extra, 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(errorBody(code, message));
}

const NO_HEADERS: OutgoingHttpHeaders = Object.freeze({}) as OutgoingHttpHeaders;

// Connect's unary form carries trailers as headers prefixed with `trailer-`.
function trailerHeaders(md: Metadata | undefined): OutgoingHttpHeaders {
  if (!md) return NO_HEADERS;
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(md.toHttp2Headers())) out[`trailer-${k}`] = v;
  return out;
}

/**
 * The answer to a call the gate sent elsewhere or refused. A redirect becomes `307` to the
 * chosen peer's HTTP URL, same path, hop count in the query; a peer without an HTTP
 * listener gets the call relayed over gRPC instead (returns false). Anything else is an error.
 */
function failed(
  res: ServerResponse,
  base: OutgoingHttpHeaders,
  err: ServerErrorResponse,
  deps: RpcDeps,
  ctx: CallContext,
  relay: (endpoint: string) => void,
  headers: Metadata | undefined,
  stream?: StreamFormat,
): boolean {
  const code = err.code ?? status.UNKNOWN;
  const md = err.metadata;
  const node = code === status.RESOURCE_EXHAUSTED ? md?.get(MD_LOCATION_NODE)[0] : undefined;
  if (typeof node === 'string') {
    const target = deps.httpUrlOf(node);
    const endpoint = md!.get(MD_LOCATION)[0];
    if (!target && typeof endpoint === 'string') {
      relay(endpoint);
      return false;
    }
    const reason = String(md!.get(MD_REASON)[0] ?? '');
    // The target's URL, this method's path, the query as sent: nothing of the request can name another host.
    const location = new URL(ctx.path + ctx.search, target);
    const hops = Number(ctx.metadata.get(MD_HOPS)[0] ?? 0);
    location.searchParams.set(MD_HOPS, String((Number.isInteger(hops) && hops >= 0 ? hops : 0) + 1));
    // Routing advice, when the node gives it, goes along for clients that learn from it.
    const advice = md!.get(MD_ADVICE)[0];
    const extra = typeof advice === 'string' ? { [MD_ADVICE]: advice } : NO_HEADERS;
    res.writeHead(307, { ...base, ...extra, location: location.href, [MD_REASON]: reason, [MD_LOCATION_NODE]: node, 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ redirect: { node, url: location.href, reason }, message: err.details ?? '' }));
    return true;
  }
  const message = err.details || err.message || 'peerbroker: the call failed';
  if (stream && stream !== 'ndjson') {
    // Connect streaming answers every status in its end-of-stream message, under HTTP 200.
    res.writeHead(200, { ...base, ...(headers?.toHttp2Headers() ?? {}), 'content-type': STREAM_CONTENT_TYPES[stream], 'cache-control': 'no-store' });
    const end = { error: { code: connectCode(code), message }, metadata: metadataObject(md) };
    res.end(envelope(0x02, Buffer.from(JSON.stringify(end))));
    return true;
  }
  answerError(res, base, httpStatusOf(code), code, message, { ...(headers?.toHttp2Headers() ?? {}), ...trailerHeaders(md) });
  return true;
}

function serveUnary(res: ServerResponse, ctx: CallContext, request: unknown, route: RpcRoute, deps: RpcDeps, base: OutgoingHttpHeaders, binary: boolean): void {
  const call = new HttpUnaryCall(ctx, request);
  let answered = false;
  let timer: NodeJS.Timeout | undefined;
  const answer: sendUnaryData<unknown> = (err, value, trailer) => {
    if (answered || res.headersSent) return;
    answered = true;
    if (err) {
      const relay = (endpoint: string) => {
        answered = false;
        deps.forward(route.method, call, endpoint, answer);
      };
      if (failed(res, base, err as ServerErrorResponse, deps, ctx, relay, call.headers)) clearTimeout(timer);
      return;
    }
    clearTimeout(timer);
    let body: string | Buffer;
    try {
      body = binary ? route.codec.responseToBinary(value) : route.codec.responseToJson(value);
    } catch (e) {
      return answerError(res, base, 500, status.INTERNAL, `peerbroker: the handler's answer cannot be written: ${(e as Error).message}`);
    }
    res.writeHead(200, {
      ...base,
      ...(call.headers?.toHttp2Headers() ?? {}),
      ...trailerHeaders(trailer ?? undefined),
      'content-type': binary ? 'application/proto' : 'application/json',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
    });
    res.end(body);
  };
  res.once('close', () => {
    if (!res.writableFinished) call.cancel();
  });
  if (ctx.deadline !== Infinity) {
    timer = setTimeout(() => {
      answer({ name: 'Deadline', message: '', code: status.DEADLINE_EXCEEDED, details: 'peerbroker: deadline exceeded (connect-timeout-ms)' }, null);
      call.cancel();
    }, ctx.deadline - Date.now());
  }
  route.handler(call, answer);
}

function serveStream(res: ServerResponse, ctx: CallContext, request: unknown, route: RpcRoute, deps: RpcDeps, base: OutgoingHttpHeaders, format: StreamFormat): void {
  let call: HttpStreamCall | undefined;
  const sink = streamSink(res, {
    format,
    codec: route.codec,
    baseHeaders: base,
    failEarly: (err) => failed(res, base, err, deps, ctx, (endpoint) => deps.forward(route.method, call, endpoint), undefined, format),
    onStalled: () => {
      call?.cancel();
      res.destroy();
    },
  });
  call = new HttpStreamCall(ctx, request, sink);
  const c = call;
  res.once('close', () => {
    if (!res.writableFinished) c.cancel();
  });
  if (ctx.deadline !== Infinity) {
    // As on gRPC: the handler is told (cancelled) and keeps its slot until it ends; the client gets the status now.
    const timer = setTimeout(() => {
      c.cancel();
      sink.fail({ name: 'Deadline', message: '', code: status.DEADLINE_EXCEEDED, details: 'peerbroker: deadline exceeded (connect-timeout-ms)' });
    }, ctx.deadline - Date.now());
    res.once('close', () => clearTimeout(timer));
  }
  route.handler(call);
}
