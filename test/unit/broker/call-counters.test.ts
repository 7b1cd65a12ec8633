import { describe, expect, it } from 'vitest';
import { CallCounters, MAX_TARGETS } from '../../../src/broker/call-counters';
import { MAX_REPORT_REDIRECTS } from '../../../src/cluster/report-codec';

describe('CallCounters: where the gate sent calls', () => {
  it('keeps one table of target × reason, from which the totals by target and the report counts come', () => {
    const c = new CallCounters();
    c.sentTo('redirect', 'n2', 'load');
    c.sentTo('redirect', 'n2', 'load');
    c.sentTo('redirect', 'n2', 'session');
    c.sentTo('forward', 'n2', 'load');
    c.sentTo('forward', 'n3', 'service');
    expect(Object.fromEntries(c.totalsByTarget('redirect'))).toEqual({ n2: 3 });
    expect(Object.fromEntries(c.totalsByTarget('forward'))).toEqual({ n2: 1, n3: 1 });
    // A report counts redirects and forwards together, by target and reason.
    expect(c.redirectList()).toEqual([
      { toNode: 'n2', reason: 'load', count: 3 },
      { toNode: 'n2', reason: 'session', count: 1 },
      { toNode: 'n3', reason: 'service', count: 1 },
    ]);
  });

  it(`counts at most ${MAX_TARGETS} targets one by one, the others under 'other'`, () => {
    const c = new CallCounters();
    for (let i = 0; i < MAX_TARGETS + 10; i++) c.sentTo('redirect', `n${i}`, 'load');
    c.sentTo('redirect', 'n0', 'load');
    expect(c.sent.size).toBe(MAX_TARGETS + 1);
    const totals = c.totalsByTarget('redirect');
    expect(totals.get('other')).toBe(10);
    expect(totals.get('n0')).toBe(2);
  });

  it('lists the largest counts first, as many as a report carries, and makes the list again only after a change', () => {
    const c = new CallCounters();
    for (let i = 0; i < 2 * MAX_REPORT_REDIRECTS; i++) for (let k = 0; k <= i; k++) c.sentTo('redirect', `n${i}`, 'load');
    const list = c.redirectList();
    expect(list).toHaveLength(MAX_REPORT_REDIRECTS);
    expect(list[0]).toEqual({ toNode: `n${2 * MAX_REPORT_REDIRECTS - 1}`, reason: 'load', count: 2 * MAX_REPORT_REDIRECTS });
    expect(c.redirectList()).toBe(list);
    c.sentTo('redirect', 'n0', 'load');
    expect(c.redirectList()).not.toBe(list);
  });

  it('says once that the counts changed, so the reporter hears them', () => {
    const c = new CallCounters();
    expect(c.takeChanged()).toBe(false);
    c.sentTo('forward', 'n2', 'load');
    expect(c.takeChanged()).toBe(true);
    expect(c.takeChanged()).toBe(false);
  });
});
