import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Metadata, status, type MethodDefinition, type sendUnaryData, type ServerErrorResponse } from '@grpc/grpc-js';
import { MD_ADVICE, MD_FOLLOW, MD_HOPS, MD_LOCATION_NODE, MD_REASON, parseFollow, parseHops } from '../wire';
import { errorBody, HttpCallError, httpStatusOf, messageOf } from './connect-errors';
import { HttpStreamCall, HttpUnaryCall, type CallContext } from './http-call';
import { jsonUnavailable, type MethodCodec } from './json-codec';
import { MAX_TIMEOUT_MS } from './limits';
import { readBody } from './request-body';
import { endStreamFrame, STREAM_CONTENT_TYPES, streamSink, type StreamFormat } from './stream-sink';

/** A hosted method as the HTTP listener serves it: its gate-wrapped handler and codec. */
export interface RpcRoute {
  method: MethodDefinition<unknown, unknown>;
  /** The handler as `addService` wrapped it: the decision runs first, as on gRPC. */
  handler: (call: unknown, callback?: sendUnaryData<unknown>) => void;
  codec: MethodCodec;
}

/** What serving a call needs of the listener: one object for all calls. */
export interface RpcDeps {
  maxBodyBytes: number;
  /** The HTTP base URL of a member, by node id; undefined when it has no HTTP listener. */
  httpUrlOf(nodeId: string): string | undefined;
  /** The response headers the gate sends with every accepted call: one object, never written. */
  sharedHeaders?: Metadata;
  /** Their HTTP form, made once. */
  sharedHttpHeaders: OutgoingHttpHeaders;
}

type Format = 'json' | 'proto' | StreamFormat;

const UNARY_FORMATS = new Map<string, Format>([
  ['application/json', 'json'],
  ['application/proto', 'proto'],
]);
const STREAM_FORMATS = new Map<string, Format>([
  ['application/json', 'ndjson'],
  ['application/connect+json', 'connect-json'],
  ['application/connect+proto', 'connect-proto'],
]);

// Headers that describe the HTTP exchange itself, not the call: not handed to handlers as metadata.
const NOT_METADATA = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'content-length', 'content-type', 'content-encoding', 'accept-encoding', 'expect']);
const NOT_METADATA_PREFIX = /^(?:connect-|sec-|access-control-|proxy-)/;

/** The answer to a call past its `connect-timeout-ms`. */
const DEADLINE_EXCEEDED: ServerErrorResponse = Object.freeze({ name: 'Deadline', message: '', code: status.DEADLINE_EXCEEDED, details: 'peerbroker: deadline exceeded (connect-timeout-ms)' });

/** Serves one POST to a hosted method; every outcome is a complete HTTP answer. */
export async function serveRpc(req: IncomingMessage, res: ServerResponse, search: string, route: RpcRoute, deps: RpcDeps, base: OutgoingHttpHeaders): Promise<void> {
  const m = route.method;
  try {
    if (m.requestStream) {
      throw new HttpCallError(status.UNIMPLEMENTED, `peerbroker: '${m.path}' streams its requests; over HTTP only unary and server-streaming methods are served (call it over gRPC)`);
    }
    const format = formatOf(req, m.responseStream, route.codec);
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
  const raw = req.headers['content-type'] ?? 'application/json';
  const semi = raw.indexOf(';');
  const type = (semi < 0 ? raw : raw.slice(0, semi)).trim().toLowerCase();
  const formats = streamed ? STREAM_FORMATS : UNARY_FORMATS;
  const f = formats.get(type);
  if (!f) {
    throw new HttpCallError(
      status.INVALID_ARGUMENT,
      `peerbroker: content-type '${type}' is not served here; send ${[...formats.keys()].join(' or ')} (with curl: -H 'content-type: application/json')`,
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
  // Each header as sent, once (a repeated header is a repeated metadata value, as on gRPC).
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i].toLowerCase();
    if (NOT_METADATA.has(key) || NOT_METADATA_PREFIX.test(key)) continue;
    try {
      md.add(key, key.endsWith('-bin') ? Buffer.from(raw[i + 1], 'base64') : raw[i + 1]);
    } catch {
      // A header that cannot be gRPC metadata (a name or value outside ASCII) is left out, unless it is ours.
      if (key.startsWith('peerbroker-')) throw new HttpCallError(status.INVALID_ARGUMENT, `peerbroker: header '${key}' has a value that is not printable ASCII`);
    }
  }
  const follow = parseFollow(md.get(MD_FOLLOW)[0]);
  if (follow === null) throw new HttpCallError(status.INVALID_ARGUMENT, `peerbroker: '${MD_FOLLOW}' must be 0, 1 or 2`);
  // A browser follows a 307 by itself: following is the default over HTTP.
  if (follow === undefined) md.set(MD_FOLLOW, '1');
  const hops = hopsIn(search);
  if (hops !== undefined) md.set(MD_HOPS, hops);
  let deadline = Infinity;
  const timeout = String(req.headers['connect-timeout-ms'] ?? '');
  if (timeout !== '') {
    if (!/^\d{1,10}$/.test(timeout)) throw new HttpCallError(status.INVALID_ARGUMENT, `peerbroker: connect-timeout-ms '${timeout}' is not a number of milliseconds`);
    deadline = Date.now() + Math.min(Number(timeout), MAX_TIMEOUT_MS);
  }
  return { path, search, metadata: md, deadline, socket: req.socket, host: req.headers.host ?? '' };
}

/** The first `peerbroker-hops` value of a query as sent (`?a=1&peerbroker-hops=1`), undecoded. */
function hopsIn(search: string): string | undefined {
  if (!search.includes(MD_HOPS)) return undefined;
  for (const pair of search.slice(1).split('&')) {
    if (pair === MD_HOPS) return '';
    if (pair.startsWith(`${MD_HOPS}=`)) return pair.slice(MD_HOPS.length + 1);
  }
  return undefined;
}

/** The query as sent with its `peerbroker-hops` pairs replaced by `peerbroker-hops=<hops>` at its end. */
function withHops(search: string, hops: number): string {
  const pair = `${MD_HOPS}=${hops}`;
  if (search.length <= 1) return `?${pair}`;
  const kept = search
    .slice(1)
    .split('&')
    .filter((p) => p !== MD_HOPS && !p.startsWith(`${MD_HOPS}=`));
  kept.push(pair);
  return `?${kept.join('&')}`;
}

/** Writes a complete error answer in Connect's unary form. */
export function answerError(res: ServerResponse, base: OutgoingHttpHeaders, httpStatus: number, code: number, message: string, extra?: OutgoingHttpHeaders): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(httpStatus, { ...base, ...extra, 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(errorBody(code, message));
}

/**
 * Adds `md` to the answer's headers `out`: as they are, or (`trailer-`) as Connect's unary
 * form carries trailers. The gate's shared headers are converted once, not per call.
 */
function putMetadata(out: OutgoingHttpHeaders, md: Metadata | null | undefined, prefix: '' | 'trailer-', deps: RpcDeps): void {
  if (!md) return;
  const h = md === deps.sharedHeaders ? deps.sharedHttpHeaders : md.toHttp2Headers();
  if (prefix === '') Object.assign(out, h);
  else for (const k of Object.keys(h)) out[prefix + k] = h[k];
}

/**
 * Answers a redirect the gate decided with `307` to the chosen peer's HTTP URL: same path,
 * the query as sent, one more hop. False when `err` is no redirect, or names a peer without
 * an HTTP listener (the gate relays those instead, so it is only answered as the error it is).
 */
function redirected(res: ServerResponse, base: OutgoingHttpHeaders, err: ServerErrorResponse, deps: RpcDeps, ctx: CallContext): boolean {
  const md = err.metadata;
  const node = err.code === status.RESOURCE_EXHAUSTED ? md?.get(MD_LOCATION_NODE)[0] : undefined;
  if (typeof node !== 'string') return false;
  const target = deps.httpUrlOf(node);
  if (!target) return false;
  const reason = String(md!.get(MD_REASON)[0] ?? '');
  // The target's URL, this method's path, the query as sent: nothing of the request can name
  // another host. The gate redirects only calls below the hop limit, so the count is well formed.
  const location = `${target}${ctx.path}${withHops(ctx.search, parseHops(ctx.metadata.get(MD_HOPS)[0], 0) + 1)}`;
  // Routing advice, when the node gives it, goes along for clients that learn from it.
  const advice = md!.get(MD_ADVICE)[0];
  if (typeof advice === 'string') base[MD_ADVICE] = advice;
  base.location = location;
  base[MD_REASON] = reason;
  base[MD_LOCATION_NODE] = node;
  base['content-type'] = 'application/json';
  base['cache-control'] = 'no-store';
  res.writeHead(307, base);
  res.end(JSON.stringify({ redirect: { node, url: location, reason }, message: err.details ?? '' }));
  return true;
}

/** The answer to a call the gate redirected or refused, or that failed: a 307, or the error. */
function failed(res: ServerResponse, base: OutgoingHttpHeaders, err: ServerErrorResponse, deps: RpcDeps, ctx: CallContext, headers: Metadata | undefined, stream?: StreamFormat): void {
  if (redirected(res, base, err, deps, ctx)) return;
  const code = err.code ?? status.UNKNOWN;
  if (stream !== undefined && stream !== 'ndjson') {
    // Connect streaming answers every status in its end-of-stream message, under HTTP 200.
    res.writeHead(200, { ...base, 'content-type': STREAM_CONTENT_TYPES[stream], 'cache-control': 'no-store' });
    res.end(endStreamFrame(err));
    return;
  }
  putMetadata(base, headers, '', deps);
  putMetadata(base, err.metadata, 'trailer-', deps);
  answerError(res, base, httpStatusOf(code), code, messageOf(err));
}

/**
 * What ends a call besides its handler: the client going away before the answer is complete
 * cancels it, and so does its deadline (`onDeadline` answers). The timer ends with the connection.
 */
function watch(res: ServerResponse, ctx: CallContext, call: HttpUnaryCall | HttpStreamCall, onDeadline: () => void): void {
  let timer: NodeJS.Timeout | undefined;
  if (ctx.deadline !== Infinity) {
    timer = setTimeout(onDeadline, ctx.deadline - Date.now());
    timer.unref();
  }
  res.once('close', () => {
    clearTimeout(timer);
    if (!res.writableFinished) call.cancel();
  });
}

function serveUnary(res: ServerResponse, ctx: CallContext, request: unknown, route: RpcRoute, deps: RpcDeps, base: OutgoingHttpHeaders, binary: boolean): void {
  const call = new HttpUnaryCall(ctx, request);
  let answered = false;
  const answer: sendUnaryData<unknown> = (err, value, trailer) => {
    if (answered || res.headersSent) return;
    answered = true;
    if (err) return failed(res, base, err as ServerErrorResponse, deps, ctx, call.headers);
    let body: string | Buffer;
    try {
      body = binary ? route.codec.responseToBinary(value) : route.codec.responseToJson(value);
    } catch (e) {
      return answerError(res, base, 500, status.INTERNAL, `peerbroker: the handler's answer cannot be written: ${(e as Error).message}`);
    }
    // `base` is this call's own object: the answer's headers go into it, no copy.
    putMetadata(base, call.headers, '', deps);
    putMetadata(base, trailer, 'trailer-', deps);
    base['content-type'] = binary ? 'application/proto' : 'application/json';
    base['content-length'] = Buffer.byteLength(body);
    base['cache-control'] = 'no-store';
    res.writeHead(200, base);
    res.end(body);
  };
  watch(res, ctx, call, () => {
    answer(DEADLINE_EXCEEDED, null);
    call.cancel();
  });
  route.handler(call, answer);
}

function serveStream(res: ServerResponse, ctx: CallContext, request: unknown, route: RpcRoute, deps: RpcDeps, base: OutgoingHttpHeaders, format: StreamFormat): void {
  const sink = streamSink(res, {
    format,
    codec: route.codec,
    baseHeaders: base,
    failEarly: (err) => failed(res, base, err, deps, ctx, undefined, format),
    onStalled: () => {
      call.cancel();
      res.destroy();
    },
  });
  const call = new HttpStreamCall(ctx, request, sink);
  // As on gRPC: at the deadline the handler is told (cancelled) and keeps its slot until it ends; the client gets the status now.
  watch(res, ctx, call, () => {
    call.cancel();
    sink.fail(DEADLINE_EXCEEDED);
  });
  route.handler(call);
}
