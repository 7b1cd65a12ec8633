import { connectivityState } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelPool } from '../../../src/transport';

// Channels to ports nobody listens on: a channel connects only when a call needs it, and none is made here.
const ep = (i: number) => `127.0.0.1:${i + 1}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the channel pool', () => {
  let pool: ChannelPool | undefined;
  afterEach(() => pool?.close());

  it('keeps at most maxChannels open, closing the least recently used one', () => {
    pool = new ChannelPool(undefined, {}, { maxChannels: 3 });
    const first = pool.channel(ep(0));
    pool.channel(ep(1));
    pool.channel(ep(2));
    pool.channel(ep(0)); // used again: ep(1) is now the least recently used
    pool.channel(ep(3));
    expect(pool.endpoints().sort()).toEqual([ep(0), ep(2), ep(3)]);
    expect(pool.channel(ep(0))).toBe(first);
  });

  it('never closes a channel a call holds: past the bound it goes over, and shrinks when calls end', () => {
    pool = new ChannelPool(undefined, {}, { maxChannels: 2 });
    const held = [0, 1, 2].map((i) => pool!.acquire(ep(i)));
    expect(pool.endpoints()).toHaveLength(3);
    for (const h of held) expect(h.channel.getConnectivityState(false)).not.toBe(connectivityState.SHUTDOWN);
    pool.release(held[0]);
    expect(pool.endpoints().sort()).toEqual([ep(1), ep(2)]);
    expect(held[0].channel.getConnectivityState(false)).toBe(connectivityState.SHUTDOWN);
  });

  it('closes a channel no call used for idleMs, and opens a new one when a call needs it again', async () => {
    pool = new ChannelPool(undefined, {}, { idleMs: 20 });
    const held = pool.acquire(ep(0));
    const idle = pool.channel(ep(1));
    await sleep(120);
    expect(pool.endpoints()).toEqual([ep(0)]);
    expect(idle.getConnectivityState(false)).toBe(connectivityState.SHUTDOWN);
    pool.release(held);
    await sleep(120);
    expect(pool.endpoints()).toEqual([]);
    expect(pool.channel(ep(1))).not.toBe(idle);
  });

  it('says a channel never connected since a mark was never connected', () => {
    pool = new ChannelPool();
    const held = pool.acquire(ep(0));
    expect(held.connectedSince(held.readyMark())).toBe(false);
    pool.release(held);
  });

  it('rejects bounds that are not numbers of channels or times', () => {
    expect(() => new ChannelPool(undefined, {}, { maxChannels: 0 })).toThrow(/'maxChannels' must be an integer >= 1/);
    expect(() => new ChannelPool(undefined, {}, { idleMs: -1 })).toThrow(/'idleMs' must be >= 0/);
  });
});
