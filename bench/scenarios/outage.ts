import type { LoadConfig, LoadResult } from '../load/protocol';
import { int, n3, table } from '../lib/format';
import { Histogram } from '../lib/histogram';
import { runLoad, type TimedEvent } from '../lib/load';
import { startNatsCluster, waitForRoutes } from '../lib/nats';
import { startBrokerCluster, startResponder, stopNodes, type Node } from '../lib/nodes';
import { NODE_CAPACITY, WORK_MS } from './balance';
import type { Ctx, Row, Scenario, ScenarioResult, Timeline } from './types';

const NODES = 3;
/** Above one node's capacity: balanced before the outage, n1 alone during it. */
const RATE = 1000;
const BUCKET_MS = 250;
const PHASES = ['before', 'outage', 'after'] as const;
type Phase = (typeof PHASES)[number];

interface PhaseFigures {
  ok: number;
  failed: number;
  seconds: number;
  p99: number;
}

/** Calls by phase, from the generator's buckets (by the time each call ended). */
function byPhase(r: LoadResult, bounds: Record<Phase, [number, number]>): Record<Phase, PhaseFigures> {
  const out = {} as Record<Phase, PhaseFigures>;
  for (const ph of PHASES) {
    const [from, to] = bounds[ph];
    const b0 = Math.round(from / BUCKET_MS);
    const b1 = Math.round(to / BUCKET_MS);
    let ok = 0;
    let failed = 0;
    const h = new Histogram();
    for (let b = b0; b < b1; b++) {
      for (const counts of Object.values(r.timeline)) ok += counts[b] ?? 0;
      failed += r.failedTimeline[b] ?? 0;
      const d = r.bucketLatency[b];
      if (d) h.merge(d);
    }
    out[ph] = { ok, failed, seconds: ((b1 - b0) * BUCKET_MS) / 1000, p99: h.percentileMs(99) };
  }
  return out;
}

/** Scenario 7: every NATS server stops mid-run, then comes back. */
export const outage: Scenario = {
  name: 'outage',
  title: `7. Control plane down: ${NODES}-server NATS cluster stopped mid-run; ${RATE} calls/s to each system`,
  async run(ctx: Ctx) {
    const warmupMs = ctx.quick ? 1000 : 1500;
    const beforeMs = ctx.quick ? 2000 : 3000;
    const outageMs = ctx.quick ? 3000 : 5000;
    const afterMs = ctx.quick ? 2500 : 4000;
    const servers = await startNatsCluster(3, `outage${ctx.run}`);
    const urls = servers.map((s) => s.url);
    const nodes: Node[] = [];
    try {
      const brokers = await startBrokerCluster(NODES, { nats: urls, cluster: 'outage', capacity: NODE_CAPACITY, workMs: WORK_MS });
      nodes.push(...brokers);
      const responders = await Promise.all(
        Array.from({ length: NODES }, (_, i) =>
          startResponder({ nodeId: `n${i + 1}`, servers: urls, subject: 'bench.quote', mode: 'quote', work: WORK_MS, capacity: NODE_CAPACITY }),
        ),
      );
      nodes.push(...responders);
      const base = {
        call: { kind: 'quote' as const },
        mode: { kind: 'open' as const, ratePerSec: RATE, maxInFlight: 400 },
        warmupMs,
        durationMs: beforeMs + outageMs + afterMs,
        maxCalls: Math.ceil((RATE * (warmupMs + beforeMs + outageMs + afterMs)) / 1000) + 10,
        deadlineMs: 1_000,
        bucketMs: BUCKET_MS,
      };
      const configs: LoadConfig[] = [
        { ...base, id: 'peerbroker', target: { kind: 'stub', endpoints: brokers.map((b) => b.endpoint) } },
        { ...base, id: 'nats-qg', target: { kind: 'nats', servers: urls, subject: 'bench.quote' } },
      ];
      const downAt = warmupMs + beforeMs;
      const upAt = downAt + outageMs;
      const events: TimedEvent[] = [
        { atMs: downAt, run: async () => void (await Promise.all(servers.map((s) => s.stop()))) },
        {
          atMs: upAt,
          run: async () => {
            await Promise.all(servers.map((s) => s.restart()));
            await waitForRoutes(servers, 10_000).catch(() => {});
          },
        },
      ];
      ctx.log('outage: both systems under load; NATS stops, then restarts');
      const run = await runLoad(configs, [], events);
      // Phases by the time calls ended (a call in flight when NATS stops counts where it ends).
      const bounds: Record<Phase, [number, number]> = {
        before: [warmupMs, downAt],
        outage: [downAt, upAt],
        after: [upAt, upAt + afterMs],
      };
      const rows: Row[] = [];
      const timeline: Timeline = {
        title: 'calls served per second',
        bucketMs: BUCKET_MS,
        marks: [
          { label: 'NATS down', atMs: run.eventsAtMs[0] ?? downAt },
          { label: 'NATS up', atMs: run.eventsAtMs[1] ?? upAt },
        ],
        series: {},
      };
      for (const r of run.results) {
        const ph = byPhase(r, bounds);
        const metrics: Record<string, number> = {};
        for (const p of PHASES) {
          metrics[`${p}:okPerSec`] = ph[p].ok / ph[p].seconds;
          metrics[`${p}:failedPerSec`] = ph[p].failed / ph[p].seconds;
          metrics[`${p}:p99`] = ph[p].p99;
        }
        metrics.servedInOutage = ph.outage.ok;
        metrics.outageSeconds = ph.outage.seconds;
        const n = r.timeline;
        const len = Math.max(0, ...Object.values(n).map((x) => x.length));
        timeline.series[r.id] = Array.from({ length: len }, (_, i) => Object.values(n).reduce((a, x) => a + (x[i] ?? 0), 0) * (1000 / BUCKET_MS));
        for (const [node, counts] of Object.entries(n)) timeline.series[`${r.id}:${node}`] = counts.map((c) => c * (1000 / BUCKET_MS));
        rows.push({ id: r.id, labels: { system: r.id === 'peerbroker' ? 'peerbroker (stub → n1)' : 'NATS request-reply, queue group' }, metrics });
      }
      return { rows, timelines: { outage: timeline } };
    } finally {
      await stopNodes(nodes);
      await Promise.all(servers.map((s) => s.stop()));
    }
  },
  render(r: ScenarioResult) {
    return [
      table(
        ['system', 'served/s before', 'served/s in outage', 'served/s after', 'failed/s in outage', 'p99 ms before', 'p99 ms in outage', 'p99 ms after', 'calls served in the outage'],
        r.rows.map((x) => {
          const m = x.metrics;
          return [
            x.labels.system,
            int(m['before:okPerSec']),
            int(m['outage:okPerSec']),
            int(m['after:okPerSec']),
            int(m['outage:failedPerSec']),
            n3(m['before:p99']),
            n3(m['outage:p99']),
            n3(m['after:p99']),
            `**${int(m.servedInOutage)}** in ${n3(m.outageSeconds)} s`,
          ];
        }),
      ),
      '',
      `Both systems are loaded at once (${RATE} calls/s each; ${NODES} nodes, capacity ${NODE_CAPACITY}, ${WORK_MS} ms work). ` +
        'In the outage peerbroker\'s peers\' reports age out (two periods), so n1 runs what it can itself: one node\'s capacity, ' +
        'the rest is refused at once (RESOURCE_EXHAUSTED), never hung. "after" starts when the servers are restarted, reconnection included.',
    ].join('\n');
  },
};
