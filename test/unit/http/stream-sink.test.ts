import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MethodCodec } from '../../../src/http/json-codec';
import { SLOW_READER_MS } from '../../../src/http/limits';
import { streamSink } from '../../../src/http/stream-sink';

/** The parts of a ServerResponse a sink uses, for a client that reads nothing: every write stays buffered. */
class UnreadResponse extends EventEmitter {
  headersSent = false;
  destroyed = false;
  writableNeedDrain = false;
  /** As in Node: false until everything written, the end included, went to the socket. */
  writableFinished = false;
  writeHead(): this {
    this.headersSent = true;
    return this;
  }
  flushHeaders(): void {}
  write(): boolean {
    this.writableNeedDrain = true;
    return false;
  }
  end(): void {
    // As Node's OutgoingMessage: after end() it no longer "needs drain", whatever is buffered.
    this.writableNeedDrain = false;
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

function sinkOn(res: UnreadResponse) {
  return streamSink(res as unknown as ServerResponse, {
    format: 'ndjson',
    codec: { responseToJson: () => '{}' } as unknown as MethodCodec,
    baseHeaders: {},
    failEarly: () => {},
    onStalled: () => {},
  });
}

afterEach(() => {
  vi.useRealTimers();
});

/** An answer (on fake timers) whose reader took nothing: one message written, then its end. */
function endedUnread(): UnreadResponse {
  vi.useFakeTimers();
  const res = new UnreadResponse();
  const sink = sinkOn(res);
  sink.message({});
  sink.end(undefined);
  return res;
}

describe('a streamed HTTP answer', () => {
  it('closes the connection of a reader that takes nothing of an answer that has ended, after SLOW_READER_MS', () => {
    const res = endedUnread();
    vi.advanceTimersByTime(SLOW_READER_MS - 1);
    expect(res.destroyed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(res.destroyed).toBe(true);
  });

  it('keeps the connection when the reader takes the end in time', () => {
    const res = endedUnread();
    res.writableFinished = true;
    res.emit('finish');
    vi.advanceTimersByTime(2 * SLOW_READER_MS);
    expect(res.destroyed).toBe(false);
  });
});
