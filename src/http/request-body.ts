import type { IncomingMessage } from 'node:http';
import { status } from '@grpc/grpc-js';
import { HttpCallError } from './connect-errors';

/**
 * Reads a request body of at most `max` bytes. A larger one is refused with 413: at once
 * when Content-Length says so (nothing is read), else as soon as the count passes `max`.
 */
export function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const tooLarge = (n: string) =>
    new HttpCallError(status.RESOURCE_EXHAUSTED, `peerbroker: the body is ${n} bytes; this node takes at most ${max} (--http-max-body-bytes)`, 413);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > max) return Promise.reject(tooLarge(declared));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.off('data', onData);
        // Stop reading; the answer says why and the connection is closed after it.
        req.pause();
        reject(tooLarge(`over ${max}`));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)));
    // Connect's status of a cancel (499: the client went away).
    req.once('error', (err) => reject(new HttpCallError(status.CANCELLED, `peerbroker: the request body was cut off: ${err.message}`)));
  });
}
