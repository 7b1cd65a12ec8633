import http2 from 'node:http2';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bankProto } from '../../examples/bank';
import type { Broker } from '../../src';
import { cleanupBrokers, startBroker } from '../helpers/brokers';

// A session token that is not printable ASCII. grpc-js clients refuse to send one, and
// grpc-js servers drop such a header before any handler sees it; the broker looks at the
// raw headers first, so the call gets the documented INVALID_ARGUMENT instead of running
// without its session. Sent here over raw HTTP/2, as a client in another language could.

interface RawAnswer {
  code: number;
  message: string;
}

/** One unary gRPC call over raw HTTP/2 with `headers` added; resolves with grpc-status and grpc-message. */
function rawCall(endpoint: string, path: string, message: Buffer, headers: Record<string, string>): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${endpoint}`);
    session.on('error', reject);
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    let got: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => (got = { ...got, ...h }));
    req.on('trailers', (t) => (got = { ...got, ...t }));
    req.resume();
    req.on('error', reject);
    req.on('close', () => {
      session.close();
      resolve({ code: Number(got['grpc-status']), message: decodeURIComponent(String(got['grpc-message'] ?? '')) });
    });
    req.end(frame);
  });
}

describe('session tokens that are not printable ASCII', () => {
  let broker: Broker;
  const deposit = () => Buffer.from(bankProto().bank.Banking.service.Deposit.requestSerialize({ accountId: 'a1', amountCents: 5 }));

  beforeAll(async () => {
    broker = await startBroker({ nodeId: 'n1' });
  });
  afterAll(cleanupBrokers);

  it.each([
    ['Latin-1', 'n1.abcdéfghij'],
    ['UTF-8 bytes', Buffer.from('n1.abcdéfghij', 'utf8').toString('latin1')],
    ['a tab', 'n1.abcd\tefghij'],
  ])('are refused with INVALID_ARGUMENT, and the call does not run (%s)', async (_what, token) => {
    const before = broker.stats.run;
    const answer = await rawCall(broker.endpoint, '/bank.Banking/Deposit', deposit(), { 'peerbroker-session': token });
    expect(answer.code).toBe(status.INVALID_ARGUMENT);
    expect(answer.message).toContain("malformed 'peerbroker-session' token");
    expect(answer.message).toContain('outside printable ASCII');
    expect(broker.stats.run).toBe(before);
  });

  // nghttp2 drops a header whose value holds any other control character (or DEL) before
  // Node or grpc-js see it: such a call arrives without a token and runs as one (documented).
  it('never see a token with other control characters: HTTP/2 drops the header, the call runs without a session', async () => {
    const before = broker.stats.run;
    const answer = await rawCall(broker.endpoint, '/bank.Banking/Deposit', deposit(), { 'peerbroker-session': 'n1.abcd\x01efghij' });
    expect(answer.code).toBe(status.OK);
    expect(broker.stats.run).toBe(before + 1);
  });

  it('leave a well-formed call over the same raw path untouched (it runs)', async () => {
    const before = broker.stats.run;
    const answer = await rawCall(broker.endpoint, '/bank.Banking/Deposit', deposit(), {});
    expect(answer.code).toBe(status.OK);
    expect(broker.stats.run).toBe(before + 1);
  });
});
