import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { status, type Metadata, type ServerErrorResponse } from '@grpc/grpc-js';
import { connectError, errorBody, messageOf } from './connect-errors';
import type { StreamSink } from './http-call';
import type { MethodCodec } from './json-codec';
import { SLOW_READER_MS } from './limits';

/**
 * How a server-streaming answer is written. `ndjson`: one JSON object a line,
 * `{"result":{...}}` per message and a last `{"error":{"code","message"}}` line when
 * the call fails after it started (grpc-gateway's form: curl and `fetch` read it line by
 * line as it arrives). `connect-json` / `connect-proto`: Connect's streaming envelopes
 * (a flags byte, a 4-byte length, the message; flags 2 marks the end-of-stream message
 * carrying the error and trailers), for Connect clients.
 */
export type StreamFormat = 'ndjson' | 'connect-json' | 'connect-proto';

/** The content type each format answers with. */
export const STREAM_CONTENT_TYPES: Record<StreamFormat, string> = {
  ndjson: 'application/x-ndjson',
  'connect-json': 'application/connect+json',
  'connect-proto': 'application/connect+proto',
};

/** Connect's flag of the end-of-stream envelope. */
const END_STREAM = 0x02;

/** Frames one Connect envelope. */
export function envelope(flags: number, payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** Metadata as Connect's end-of-stream `metadata` object: key → list of values (binary ones base64). */
export function metadataObject(md: Metadata | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, values] of Object.entries(md?.toJSON() ?? {})) {
    out[k] = values.map((v) => (typeof v === 'string' ? v : Buffer.from(v).toString('base64')));
  }
  return out;
}

/** Connect's end-of-stream message: the error, if the call failed, and the trailers (the error's, without). */
export function endStreamFrame(error?: ServerErrorResponse, trailers?: Metadata): Buffer {
  const end: { error?: { code: string; message: string }; metadata?: Record<string, string[]> } = {};
  if (error) end.error = connectError(error.code ?? status.UNKNOWN, messageOf(error));
  const md = metadataObject(trailers ?? error?.metadata);
  if (Object.keys(md).length > 0) end.metadata = md;
  return envelope(END_STREAM, Buffer.from(JSON.stringify(end)));
}

/** What a sink needs of the call it writes for. */
export interface SinkOptions {
  format: StreamFormat;
  codec: MethodCodec;
  /** Headers every answer carries (node id, CORS). */
  baseHeaders: OutgoingHttpHeaders;
  /** Answers an error that came before anything was written (a redirect, a reject) as a whole answer. */
  failEarly(err: ServerErrorResponse): void;
  /** The reader stalled for SLOW_READER_MS with data waiting: cancel the call. */
  onStalled(): void;
}

/** The sink of one streamed answer on `res`. */
export function streamSink(res: ServerResponse, o: SinkOptions): StreamSink {
  let headers: Metadata | undefined;
  let done = false;
  let stall: NodeJS.Timeout | undefined;
  // The write waiting for the reader: at most one (the call is a Writable, one write at a time).
  let waiting: (() => void) | undefined;
  const connect = o.format !== 'ndjson';
  const start = () => {
    if (res.headersSent) return;
    res.writeHead(200, { ...o.baseHeaders, ...(headers?.toHttp2Headers() ?? {}), 'content-type': STREAM_CONTENT_TYPES[o.format], 'cache-control': 'no-store' });
    // The headers go now, not with the first message: a queued call shows it was accepted.
    res.flushHeaders();
  };
  const frame = (value: unknown): Buffer | string => {
    if (o.format === 'ndjson') return `{"result":${o.codec.responseToJson(value)}}\n`;
    if (o.format === 'connect-json') return envelope(0, Buffer.from(o.codec.responseToJson(value)));
    return envelope(0, o.codec.responseToBinary(value));
  };
  const finish = (error: ServerErrorResponse | undefined, trailers: Metadata | undefined) => {
    if (done) return;
    done = true;
    clearTimeout(stall);
    stall = undefined;
    if (!connect) res.end(error ? `{"error":${errorBody(error.code ?? status.UNKNOWN, messageOf(error))}}\n` : '');
    else res.end(endStreamFrame(error, trailers));
    // What is still buffered waits for the reader as long as any write does, then the
    // connection goes (Node's server has no timeout on sending an answer).
    if (!res.writableFinished) {
      stall = setTimeout(() => res.destroy(), SLOW_READER_MS);
      stall.unref();
      res.once('finish', () => clearTimeout(stall));
    }
  };
  const drained = () => {
    clearTimeout(stall);
    stall = undefined;
    const w = waiting;
    waiting = undefined;
    w?.();
  };
  // A destroyed answer (a stalled reader, a client gone) never drains: the write waiting ends
  // now, and the stall timer goes with the connection.
  res.once('close', () => {
    res.off('drain', drained);
    drained();
  });
  return {
    headers(md) {
      if (res.headersSent) return;
      if (headers) headers.merge(md);
      else headers = md.clone();
      start();
    },
    message(value) {
      if (done || res.destroyed) return true;
      start();
      let ok: boolean;
      try {
        ok = res.write(frame(value));
      } catch (err) {
        finish({ name: 'Encode', message: `peerbroker: cannot write the answer as JSON: ${(err as Error).message}`, code: status.INTERNAL }, undefined);
        return true;
      }
      if (!ok && !stall) {
        stall = setTimeout(() => o.onStalled(), SLOW_READER_MS);
        stall.unref();
      }
      return ok;
    },
    onDrain(cb) {
      waiting = cb;
      res.once('drain', drained);
    },
    end(trailers) {
      start();
      finish(undefined, trailers);
    },
    fail(err) {
      if (done) return;
      if (res.headersSent) return finish(err, undefined);
      done = true;
      o.failEarly(err);
    },
  };
}
