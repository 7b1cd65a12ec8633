import * as path from 'node:path';
import type { LoadConfig } from '../load/protocol';
import { median } from '../lib/histogram';
import { int, loadMetrics, n3, table } from '../lib/format';
import { runLoad, summarize } from '../lib/load';
import { NatsServer } from '../lib/nats';
import { startBroker, startBrokerHost, stopNodes, waitForMembers, type Node } from '../lib/nodes';
import { startProcess, waitForLine, type Child } from '../lib/proc';
import type { Ctx, Row, Scenario, ScenarioResult } from './types';

const PLAIN_HTTP = path.join(__dirname, '..', 'servers', 'plain-http.js');
/** Offered rates of the overhead pairs, calls/s (open loop: the same for both systems). */
const OVERHEAD_RATES = [300, 1500];
/** Offered rate of the redirect pairs, calls/s: fetch costs its client over a millisecond of CPU a call here. */
const REDIRECT_RATE = 100;
/** Large enough that admission never queues: this measures the HTTP path, not queueing. */
const CAPACITY = 10_000;
const CALL_PATH = '/bank.Securities/GetQuote';
const RATIOS = ['p50Ratio', 'p99Ratio', 'serverCpuRatio', 'clientCpuRatio'] as const;
/** Pairs of each comparison in a run, quick or full: a range needs several. */
const PAIRS = 3;

/** One side of a pair: its label, base URL, the servers whose CPU counts, and the HTTP client. */
type Side = { kind: string; url: string; watch: Child[]; client: 'fetch' | 'agent' };

async function httpUrlOf(child: Child): Promise<string> {
  return /serves HTTP on (\S+)|listening on (http\S+)/.exec(await waitForLine(child, /serves HTTP on \S+|listening on http\S+/, 20_000))!.slice(1).find(Boolean)!;
}

/**
 * Scenario 9: what the HTTP side costs. Overhead: the broker's HTTP/JSON path (gate,
 * proto3 JSON mapping) against a plain node:http server running the same handler, both
 * called on a keep-alive node:http agent. Redirect: a call sent with fetch to a node that
 * always redirects, fetch following the 307, against the same call sent straight to the
 * peer. Each pair is measured back to back (the order alternating per pair), on the same
 * Poisson schedule, its ratio taken within the pair; the table gives the median and the
 * range over every pair of every run. Latency counts from each call's scheduled send time,
 * and the window holds the calls scheduled in it, each followed to its end.
 */
export const http: Scenario = {
  name: 'http',
  title: '9. HTTP/JSON: overhead over plain node:http, and a 307 followed by fetch',
  // The spread is over the pairs of one run: more runs only add pairs.
  defaultRuns: { quick: 1, full: 1 },
  async run(ctx: Ctx) {
    const warmupMs = ctx.quick ? 300 : 1000;
    const durationMs = ctx.quick ? 1000 : 3000;
    const nodes: Node[] = [];
    const nats = await NatsServer.start('http');
    try {
      const plain = startProcess('plain-http p1', process.execPath, [PLAIN_HTTP, JSON.stringify({ nodeId: 'p1', work: 0 })]);
      nodes.push({ id: 'p1', endpoint: '', child: plain });
      const b1 = await startBroker({ id: 'b1', capacity: CAPACITY, workMs: 0, extraArgs: ['--http-listen', '127.0.0.1:0'] });
      nodes.push(b1);
      // n1 always reads as fully loaded (a fixed meter), so it redirects every call to n2.
      const n2 = await startBroker({ id: 'n2', nats: [nats.url], cluster: 'http', capacity: CAPACITY, workMs: 0, extraArgs: ['--http-listen', '127.0.0.1:0'] });
      nodes.push(n2);
      const n1 = await startBrokerHost('n1', {
        broker: { nodeId: 'n1', listen: '127.0.0.1:0', nats: [nats.url], cluster: 'http', capacity: CAPACITY, httpListen: '127.0.0.1:0' },
        fixedLoad: 1,
        work: 0,
      });
      nodes.push(n1);
      await waitForMembers([n1, n2], 10_000);
      const rows: Row[] = [];
      const measure = async (id: string, side: Side, rate: number, seed: number) => {
        const cfg: LoadConfig = {
          id,
          target: { kind: 'http', url: side.url + CALL_PATH, client: side.client },
          call: { kind: 'quote' },
          mode: { kind: 'poisson', ratePerSec: rate, seed, maxInFlight: 400 },
          warmupMs,
          durationMs,
          // Room for the Poisson schedule's spread (its count is only expected to be rate × time).
          maxCalls: Math.ceil((1.3 * rate * (warmupMs + durationMs)) / 1000) + 50,
          deadlineMs: 5_000,
          bucketMs: 250,
        };
        ctx.log(`http: ${id}`);
        const run = await runLoad([cfg], side.watch);
        const s = summarize(run.results, 250);
        const server = side.watch.reduce((a, c) => a + (run.serverCpuMs[c.name] ?? 0), 0);
        const m = { ...loadMetrics(s, server, run.otherCores), serverCpuUsPerCall: (1000 * server) / s.okCalls, clientCpuUsPerCall: (1000 * s.clientCpuMs) / s.okCalls };
        rows.push({ id, labels: { kind: side.kind, rate: String(rate) }, metrics: m });
        return m;
      };
      // One row per pair: render pools the pairs of every run.
      const compare = async (name: string, subject: Side, base: Side, rate: number) => {
        for (let pair = 0; pair < PAIRS; pair++) {
          const order = (pair + ctx.run) % 2 === 0 ? [subject, base] : [base, subject];
          const seed = 1_000 * (ctx.run + 1) + pair;
          const got: Record<string, Record<string, number>> = {};
          for (const side of order) got[side.kind] = await measure(`${side.kind}@${rate}#${ctx.run}.${pair}`, side, rate, seed);
          const s = got[subject.kind];
          const b = got[base.kind];
          rows.push({
            id: `${name}@${rate}#${ctx.run}.${pair}`,
            labels: { comparison: name, rate: String(rate) },
            metrics: { p50Ratio: s.p50 / b.p50, p99Ratio: s.p99 / b.p99, serverCpuRatio: s.serverCpuUsPerCall / b.serverCpuUsPerCall, clientCpuRatio: s.clientCpuUsPerCall / b.clientCpuUsPerCall },
          });
        }
      };
      const plainSide: Side = { kind: 'plain', url: await httpUrlOf(plain), watch: [plain], client: 'agent' };
      const brokerSide: Side = { kind: 'broker', url: await httpUrlOf(b1.child), watch: [b1.child], client: 'agent' };
      for (const rate of OVERHEAD_RATES) await compare('overhead', brokerSide, plainSide, rate);
      const direct: Side = { kind: 'direct', url: await httpUrlOf(n2.child), watch: [n1.child, n2.child], client: 'fetch' };
      const redirected: Side = { kind: 'redirected', url: await httpUrlOf(n1.child), watch: [n1.child, n2.child], client: 'fetch' };
      await compare('redirect', redirected, direct, REDIRECT_RATE);
      return { rows };
    } finally {
      await stopNodes(nodes);
      await nats.stop();
    }
  },
  render(r: ScenarioResult) {
    // Every pair of every run, pooled (each run's rows carry their run in their ids).
    const all = r.perRun.flat();
    const cells = all.filter((x) => x.labels.kind);
    const keys = [...new Set(cells.map((c) => `${c.labels.kind}@${c.labels.rate}`))];
    const line = (key: string) => {
      const group = cells.filter((c) => `${c.labels.kind}@${c.labels.rate}` === key);
      const med = (k: string) => median(group.map((g) => g.metrics[k]));
      const [kind, rate] = key.split('@');
      return [kind, rate, int(med('throughput')), n3(med('p50')), n3(med('p99')), int(med('serverCpuUsPerCall')), int(med('clientCpuUsPerCall')), n3(med('redirectsPerCall'))];
    };
    const pairs = all.filter((x) => x.labels.comparison);
    const comparisons = [...new Set(pairs.map((p) => `${p.labels.comparison}@${p.labels.rate}`))].map((key) => {
      const group = pairs.filter((p) => `${p.labels.comparison}@${p.labels.rate}` === key);
      const [comparison, rate] = key.split('@');
      const range = (k: string) => {
        const v = group.map((g) => g.metrics[k]);
        return `${median(v).toFixed(2)} (${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)})`;
      };
      return [comparison === 'overhead' ? 'broker HTTP over plain node:http' : '307 followed by fetch over direct', rate, int(group.length), ...RATIOS.map(range)];
    });
    return [
      table(['system', 'offered calls/s', 'calls/s', 'p50 ms', 'p99 ms', 'servers CPU µs/call', 'client CPU µs/call', 'redirects/call'], keys.map(line)),
      '',
      'Figures above: median over the pairs. Ratios within each pair (measured back to back on the same Poisson schedule, order alternating), median (min–max) over the pairs; latency from each call\'s scheduled send time.',
      '',
      table(['comparison', 'offered calls/s', 'pairs', 'p50 ratio', 'p99 ratio', 'servers CPU/call ratio', 'client CPU/call ratio'], comparisons),
    ].join('\n');
  },
};
