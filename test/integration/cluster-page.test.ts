import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src';
import { holdSlots, sleep, startBrokerGroup, startBrokerProcess, waitFor, type BrokerProcess, type SlotHold } from '../helpers/brokers';
import { startBrowser, testFolder, type TestBrowser } from '../helpers/browser';
import { waitForLine } from '../helpers/processes';
import { natsForSuite } from '../helpers/suite';

// A killed node is off-line after 3 × 500 ms. (At 250 ms, n3, a process on a busy machine,
// sometimes reported late enough to read UNKNOWN, two periods, and the summary said 2 online.)
const PERIOD_MS = 500;
const CAPACITY = 4;

/** The page's rows as a person reads them: node → status, load text, run/s, redirected/s. */
async function rows(page: Page): Promise<Record<string, { status: string; load: string; run: string; redirected: string }>> {
  return page.$$eval('#nodes tr', (trs) =>
    Object.fromEntries(
      trs.map((tr) => [
        tr.getAttribute('data-node') ?? '',
        {
          status: tr.querySelector('.pill')?.textContent ?? '',
          load: tr.querySelector('.load')?.textContent ?? '',
          run: tr.querySelector('.run-rate')?.textContent ?? '',
          redirected: tr.querySelector('.redirect-rate')?.textContent ?? '',
        },
      ]),
    ),
  );
}

describe('the live cluster page, in headless Chromium', () => {
  const nats = natsForSuite();
  // n1 and n2 in this process (cheaper on a shared machine), n3 a process: it is killed -9.
  let n1: Broker;
  let n3: BrokerProcess;
  const urls: Record<string, string> = {};
  let browser: TestBrowser | undefined;
  let stopLoad = false;
  let load: Promise<void> | undefined;
  let hold: SlotHold | undefined;

  beforeAll(async () => {
    const common = { nats: [nats().url], cluster: 'browser', capacity: CAPACITY, periodMs: PERIOD_MS };
    let inProcess: Broker[];
    [inProcess, n3, browser] = await Promise.all([
      startBrokerGroup(['n1', 'n2'], { ...common, workMs: 20, httpListen: '127.0.0.1:0' }),
      startBrokerProcess({ ...common, nodeId: 'n3', env: { BANK_WORK_MS: '20' }, extraArgs: ['--http-listen', '127.0.0.1:0'] }),
      startBrowser(),
    ]);
    n1 = inProcess[0];
    for (const b of inProcess) urls[b.nodeId] = b.httpUrl!;
    urls.n3 = /serves HTTP on (\S+)/.exec(await waitForLine(n3.child, /serves HTTP on \S+/))![1];
    // Every node knows every other's HTTP URL before load starts.
    await waitFor(async () => {
      const s = (await (await fetch(`${urls.n1}/peerbroker/cluster`)).json()) as { nodes: Array<{ httpUrl: string }> };
      return s.nodes.filter((n) => n.httpUrl).length === 3;
    }, 10_000);
    // Load from plain HTTP clients, all entering at n1 (bounded: it stops with the suite). Four
    // callers, each resting 10 ms between calls, keep n1 over its threshold (20 ms of work a
    // call, 4 slots) at about 130 calls/s: enough to move, little enough for the tests beside.
    load = Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 2_000 && !stopLoad; i++) {
          await fetch(`${urls.n1}/bank.Banking/GetBalance`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"accountId":"page"}' })
            .then((r) => r.arrayBuffer())
            .catch(() => undefined);
          await sleep(10);
        }
      }),
    ).then(() => undefined);
  });

  afterAll(async () => {
    stopLoad = true;
    hold?.release();
    await load;
    await browser?.stop();
  });

  it('lists every node with moving numbers and the redirects, and shows a killed node as off-line', async () => {
    const page = await browser!.page();
    const outside: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(urls.n1)) outside.push(r.url());
    });
    await page.goto(`${urls.n1}/`);
    await page.waitForSelector('#nodes tr[data-node="n3"]');
    expect(Object.keys(await rows(page))).toEqual(['n1', 'n2', 'n3']);
    expect(await page.textContent('h1')).toBe('peerbroker cluster browser');

    // The numbers move: n1 runs calls and sends some on, and the page says where to.
    const first = await rows(page);
    await page.waitForFunction(() => document.querySelector('#flows tr[data-from="n1"]') !== null, undefined, { timeout: 10_000 });
    await waitFor(async () => {
      const now = await rows(page);
      return now.n1.run !== first.n1.run && Number(now.n1.run.replace(/,/g, '')) > 0 && Number(now.n1.redirected.replace(/,/g, '')) > 0;
    }, 10_000, 100, 'the run/s and redirected/s of n1 to move');
    await waitFor(async () => /^3 nodes: 3 online · [\d,]+ calls\/s run · [\d,]+ redirected\/s · threshold 0\.50$/.test((await page.textContent('#summary')) ?? ''), 10_000, 100, 'the summary to say 3 online');

    const screenshot = path.join(testFolder('cluster-page'), 'cluster-page.png');
    await page.screenshot({ path: screenshot, fullPage: true });

    await n3.kill9();
    await page.waitForSelector('#nodes tr[data-node="n3"][data-status="OFFLINE"]', { timeout: 10_000 });
    expect((await rows(page)).n3.status).toBe('OFFLINE');
    await waitFor(async () => /^3 nodes: 2 online, 1 off-line · /.test((await page.textContent('#summary')) ?? ''), 10_000, 100, 'the summary to say 2 online, 1 off-line');
    expect(await page.textContent('#nodes tr[data-node="n3"] .why')).toMatch(/^no report for \d+\.\d s$/);
    await page.screenshot({ path: screenshot.replace('.png', '-n3-offline.png'), fullPage: true });
    // Nothing was fetched from anywhere but the node that served the page.
    expect(outside).toEqual([]);
    await page.close();
  });

  it("follows a 307 in the browser's own fetch: a busy node's call runs on a peer", async () => {
    stopLoad = true;
    await load;
    hold = holdSlots(n1.endpoint, CAPACITY);
    await waitFor(async () => {
      const s = (await (await fetch(`${urls.n1}/peerbroker/cluster`)).json()) as { nodes: Array<{ id: string; status: string; load: number }> };
      const n = Object.fromEntries(s.nodes.map((x) => [x.id, x]));
      return n.n1.load === 1 && n.n2.status === 'ONLINE' && n.n2.load === 0;
    }, 10_000, 100, 'n1 full and n2 idle, as n1 sees them');
    // A page of n1's origin (the page's own CSP lets it talk to n1 only, so another of n1's documents).
    const page = await browser!.page();
    await page.goto(`${urls.n1}/peerbroker/cluster`);
    const answer = await page.evaluate(async () => {
      const r = await fetch('/bank.Banking/GetBalance', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"accountId":"b"}' });
      return { status: r.status, url: r.url, redirected: r.redirected, body: (await r.json()) as { servedBy: string } };
    });
    expect(answer).toEqual({ status: 200, url: `${urls.n2}/bank.Banking/GetBalance?peerbroker-hops=1`, redirected: true, body: { accountId: 'b', balanceCents: '0', servedBy: 'n2' } });
    await page.close();
  });
});
