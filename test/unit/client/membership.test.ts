import { describe, expect, it } from 'vitest';
import { Membership, type MembersAsk } from '../../../src/client/membership';
import type { MembersResponse__Output } from '../../../src/generated/peerbroker/v1/MembersResponse';

type Member = MembersResponse__Output['members'][number];
const member = (endpoint: string, status = 'ONLINE'): Member => ({ nodeId: endpoint, endpoint, status, endpoints: [endpoint] }) as unknown as Member;
const answer = (...members: Member[]): MembersResponse__Output => ({ nodeId: 'n', members }) as unknown as MembersResponse__Output;
const never = () => new Promise<MembersResponse__Output>(() => {});

describe('membership', () => {
  it('asks several known nodes at once: one that never answers does not hold the refresh', async () => {
    const asked: string[] = [];
    const ask: MembersAsk = (endpoint) => {
      asked.push(endpoint);
      return endpoint === 'dead:1' ? never() : Promise.resolve(answer(member('live:1'), member('new:1')));
    };
    const m = new Membership(['dead:1', 'live:1'], ask, { refreshMs: 0 });
    await m.refresh();
    expect(asked).toEqual(['dead:1', 'live:1']);
    expect(m.has('new:1')).toBe(true);
    expect(m.all()).toEqual(['dead:1', 'live:1', 'new:1']);
  });

  it('asks the node that just answered first, and shares one refresh between concurrent callers', async () => {
    const asked: string[] = [];
    const ask: MembersAsk = (endpoint) => (asked.push(endpoint), Promise.resolve(answer(member('x:1'))));
    const m = new Membership(['a:1', 'b:1', 'c:1', 'd:1'], ask, { refreshMs: 0 });
    await m.refresh();
    asked.length = 0;
    await Promise.all([m.refresh('x:1'), m.refresh('a:1')]);
    expect(asked).toEqual(['x:1', 'a:1', 'b:1']);
  });

  it('counts a refresh that failed: while no member answers, a second one soon after asks nobody', async () => {
    let asks = 0;
    const m = new Membership(['a:1'], () => (asks++, Promise.reject(new Error('down'))), { refreshMs: 0 });
    await m.refreshIfOlder(200);
    await m.refreshIfOlder(200);
    expect(asks).toBe(1);
  });

  it('counts a slow refresh from when it ended: a redirect right after it asks nobody again', async () => {
    let asks = 0;
    const slow: MembersAsk = () => (asks++, new Promise((_, reject) => setTimeout(() => reject(new Error('down')), 300)));
    const m = new Membership(['a:1'], slow, { refreshMs: 0 });
    await m.refreshIfOlder(200);
    await m.refreshIfOlder(200);
    expect(asks).toBe(1);
  });

  it('makes a caller that comes while a refresh is under way wait for its answer', async () => {
    let answerNow!: () => void;
    const ask: MembersAsk = () => new Promise((resolve) => (answerNow = () => resolve(answer(member('n2:1')))));
    const m = new Membership(['a:1'], ask, { refreshMs: 0 });
    m.start();
    const asked = m.refreshIfOlder(200);
    answerNow();
    await asked;
    expect(m.has('n2:1')).toBe(true);
  });

  it('tries the next few when the first ones fail, and keeps the list when none answers', async () => {
    const ask: MembersAsk = (endpoint) => (endpoint === 'e:1' ? Promise.resolve(answer(member('f:1'))) : Promise.reject(new Error('down')));
    const m = new Membership(['a:1', 'b:1', 'c:1', 'e:1'], ask, { refreshMs: 0 });
    await m.refresh();
    expect(m.has('f:1')).toBe(true);
    const none = new Membership(['a:1'], () => Promise.reject(new Error('down')), { refreshMs: 0 });
    await none.refresh();
    expect(none.all()).toEqual(['a:1']);
  });

  it('keeps at most maxLearned endpoints, and none of nodes off-line or leaving', async () => {
    const many = answer(...Array.from({ length: 50 }, (_, i) => member(`m${i}:1`)), member('off:1', 'OFFLINE'), member('bye:1', 'LEAVING'));
    const m = new Membership(['a:1'], () => Promise.resolve(many), { refreshMs: 0, maxLearned: 10 });
    await m.refresh();
    expect(m.all()).toHaveLength(11);
    expect(m.has('m9:1')).toBe(true);
    expect(m.has('m10:1')).toBe(false);
    expect(m.has('off:1') || m.has('bye:1')).toBe(false);
  });
});
