import type { LoadConfig } from '../load/protocol';
import { int, loadMetrics, n3, ratio, spread, rowOf, table } from '../lib/format';
import { runLoad, summarize } from '../lib/load';
import { NatsServer } from '../lib/nats';
import { startBroker, startBrokerHost, stopNodes, waitForMembers, type Node } from '../lib/nodes';
import type { Ctx, Row, Scenario, ScenarioResult } from './types';

const LEVELS = [1, 16];
/**
 * direct: a per-call follower (load/follower.ts) to n2; redirected: the same client to n1, every
 * call sent on to n2 (a follower keeps no memory, so each call pays the redirect); bounce: n1's
 * redirect answer alone; stub: the project's stub to n1, which learns from the first redirect's
 * advice where to send its next calls (what a stub pays in steady state), against stub-direct,
 * the stub to n2.
 */
const KINDS = ['direct', 'redirected', 'bounce', 'stub', 'stub-direct'] as const;
type Kind = (typeof KINDS)[number];
const CAPACITY = 10_000;

/** Scenario 2: a call redirected once vs. a direct call, both on a warm stub. */
export const redirect: Scenario = {
  name: 'redirect',
  title: '2. Redirect cost: a call redirected once vs. direct (per-call follower), and the stub that learns',
  async run(ctx: Ctx) {
    const warmupMs = ctx.quick ? 300 : 1000;
    const durationMs = ctx.quick ? 900 : 2500;
    const nodes: Node[] = [];
    const nats = await NatsServer.start('redirect');
    try {
      const n2 = await startBroker({ id: 'n2', nats: [nats.url], cluster: 'redirect', capacity: CAPACITY, workMs: 0 });
      nodes.push(n2);
      // n1 always reads as fully loaded (a fixed meter), so it redirects every call of a per-call follower to n2.
      const n1 = await startBrokerHost('n1', {
        broker: { nodeId: 'n1', listen: '127.0.0.1:0', nats: [nats.url], cluster: 'redirect', capacity: CAPACITY },
        fixedLoad: 1,
        work: 0,
      });
      nodes.push(n1);
      await waitForMembers([n1, n2], 10_000);
      const rows: Row[] = [];
      for (const level of LEVELS) {
        let order: Kind[] = [...KINDS];
        if (ctx.run % 2 === 1) order = order.reverse();
        for (const kind of order) {
          const endpoints = kind === 'direct' || kind === 'stub-direct' ? [n2.endpoint] : kind === 'stub' ? [n1.endpoint, n2.endpoint] : [n1.endpoint];
          const cfg: LoadConfig = {
            id: `${kind}-${level}`,
            target: { kind: kind === 'bounce' ? 'bounce' : kind.startsWith('stub') ? 'stub' : 'follower', endpoints },
            call: { kind: 'quote' },
            mode: { kind: 'closed', concurrency: level },
            warmupMs,
            durationMs,
            maxCalls: 2_000_000,
            deadlineMs: 5_000,
            bucketMs: 250,
          };
          ctx.log(`redirect: ${kind}, ${level} in flight`);
          const run = await runLoad([cfg], [n1.child, n2.child, nats.child]);
          const s = summarize(run.results, 250);
          const server = (run.serverCpuMs[n1.child.name] ?? 0) + (run.serverCpuMs[n2.child.name] ?? 0);
          rows.push({
            id: `${kind}@${level}`,
            labels: { kind, inFlight: String(level) },
            metrics: {
              ...loadMetrics(s, server, run.otherCores),
              channels: s.channels,
              attempts: run.attempts,
              servedByN2: (s.servedBy.n2 ?? 0) / Math.max(1, s.okCalls),
              clientCpuUsPerCall: (1000 * s.clientCpuMs) / s.okCalls,
              serverCpuUsPerCall: (1000 * server) / s.okCalls,
            },
          });
        }
        const d = rowOf(rows, `direct@${level}`).metrics;
        const r = rowOf(rows, `redirected@${level}`).metrics;
        const b = rowOf(rows, `bounce@${level}`).metrics;
        const st = rowOf(rows, `stub@${level}`).metrics;
        const sd = rowOf(rows, `stub-direct@${level}`).metrics;
        rows.push({
          id: `ratio@${level}`,
          labels: { inFlight: String(level) },
          metrics: {
            p50Ratio: r.p50 / d.p50,
            p99Ratio: r.p99 / d.p99,
            throughputRatio: r.throughput / d.throughput,
            clientCpuRatio: r.clientCpuUsPerCall / d.clientCpuUsPerCall,
            bounceP50Ratio: b.p50 / d.p50,
            stubP50Ratio: st.p50 / sd.p50,
            stubP99Ratio: st.p99 / sd.p99,
          },
        });
      }
      return { rows };
    } finally {
      await stopNodes(nodes);
      await nats.stop();
    }
  },
  render(r: ScenarioResult) {
    const lines = LEVELS.flatMap((level) =>
      KINDS.map((kind) => {
        const m = rowOf(r.rows, `${kind}@${level}`).metrics;
        return [
          level,
          kind,
          int(m.throughput),
          n3(m.p50),
          n3(m.p99),
          n3(m.p999),
          n3(m.redirectsPerCall),
          `${Math.round(100 * (m.servedByN2 ?? NaN))} %`,
          int(m.channels),
          int(m.clientCpuUsPerCall),
          int(m.serverCpuUsPerCall),
        ];
      }),
    );
    const ratios = LEVELS.map((level) => {
      const m = rowOf(r.rows, `ratio@${level}`).metrics;
      return [
        level,
        spread(m, 'p50Ratio', 2.0),
        spread(m, 'p99Ratio', 2.0),
        spread(m, 'throughputRatio'),
        spread(m, 'clientCpuRatio'),
        spread(m, 'bounceP50Ratio'),
        spread(m, 'stubP50Ratio'),
        spread(m, 'stubP99Ratio'),
      ];
    });
    return [
      table(
        ['in flight', 'call', 'calls/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'redirects/call', 'run on n2', 'stub channels', 'client CPU µs/call', 'servers CPU µs/call'],
        lines,
      ),
      '',
      'Redirected over direct (a per-call follower both times); target: latency ratio ≤ 2.0. "Redirect answer alone" is the bounce row over direct: ' +
        'what the first leg costs (a plain client that sends `peerbroker-follow` and stops at the redirect). ' +
        '"Stub" is the stub sent to n1 over the stub sent to n2 (stub-direct): n1 reads as full, so its advice moves most calls to n2, and the few it keeps run there (advised calls stay unless they would queue).',
      '',
      table(['in flight', 'p50 ratio', 'p99 ratio', 'throughput ratio', 'client CPU/call ratio', 'redirect answer alone: p50 ratio', 'stub: p50 ratio', 'stub: p99 ratio'], ratios),
    ].join('\n');
  },
};
