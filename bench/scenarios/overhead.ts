import type { LoadConfig } from '../load/protocol';
import { int, loadMetrics, n3, ratio, spread, rowOf, table } from '../lib/format';
import { runLoad, split, summarize } from '../lib/load';
import { startBroker, startPlainServer, stopNodes, type Node } from '../lib/nodes';
import type { Ctx, Row, Scenario, ScenarioResult } from './types';

const LEVELS = [1, 16, 64, 256];
/** Large enough that admission never queues: this measures overhead, not queueing. */
const CAPACITY = 10_000;

type System = 'plain' | 'broker-plain' | 'peerbroker';
const SYSTEMS: Record<System, string> = {
  plain: 'grpc-js server + grpc-js client',
  'broker-plain': 'peerbroker broker + plain grpc-js client',
  peerbroker: 'peerbroker broker + stub',
};

/** Scenario 1: the cost of the broker and the stub on calls that stay local. */
export const overhead: Scenario = {
  name: 'overhead',
  title: '1. Overhead: one node, calls that stay local, zero work',
  async run(ctx: Ctx) {
    const warmupMs = ctx.quick ? 250 : 1000;
    const durationMs = ctx.quick ? 800 : 2000;
    const nodes: Node[] = [];
    try {
      const plain = await startPlainServer('plain', 0);
      nodes.push(plain);
      const broker = await startBroker({ id: 'n1', capacity: CAPACITY, workMs: 0 });
      nodes.push(broker);
      const rows: Row[] = [];
      for (const level of LEVELS) {
        // The broker with a plain client only splits the cost; --quick leaves it out.
        let order: System[] = ctx.quick ? ['plain', 'peerbroker'] : ['plain', 'peerbroker', 'broker-plain'];
        if (ctx.run % 2 === 1) order = order.reverse();
        for (const sys of order) {
          const server = sys === 'plain' ? plain : broker;
          // One generator cannot load a server (it tops out near one core): use two above one call in flight.
          const gens = level === 1 ? [1] : split(level, 2);
          const configs: LoadConfig[] = gens.map((c, i) => ({
            id: `${sys}-${level}-${i}`,
            target: { kind: sys === 'peerbroker' ? 'stub' : 'grpc', endpoints: [server.endpoint] },
            call: { kind: 'quote' },
            mode: { kind: 'closed', concurrency: c },
            warmupMs,
            durationMs,
            maxCalls: 2_000_000,
            deadlineMs: 5_000,
            bucketMs: 250,
          }));
          ctx.log(`overhead: ${sys}, ${level} in flight`);
          const run = await runLoad(configs, [server.child]);
          const s = summarize(run.results, 250);
          rows.push({
            id: `${sys}@${level}`,
            labels: { system: SYSTEMS[sys], inFlight: String(level) },
            metrics: { ...loadMetrics(s, run.serverCpuMs[server.child.name], run.otherCores), attempts: run.attempts },
          });
        }
        const m = (sys: System) => rowOf(rows, `${sys}@${level}`).metrics;
        rows.push({
          id: `ratio@${level}`,
          labels: { inFlight: String(level) },
          metrics: {
            throughputRatio: m('peerbroker').throughput / m('plain').throughput,
            p50Ratio: m('peerbroker').p50 / m('plain').p50,
            p99Ratio: m('peerbroker').p99 / m('plain').p99,
            brokerThroughputRatio: m('broker-plain').throughput / m('plain').throughput,
            brokerP50Ratio: m('broker-plain').p50 / m('plain').p50,
            serverEfficiencyRatio: m('peerbroker').callsPerServerCpuS / m('plain').callsPerServerCpuS,
            clientEfficiencyRatio: m('peerbroker').callsPerClientCpuS / m('plain').callsPerClientCpuS,
          },
        });
      }
      return { rows };
    } finally {
      await stopNodes(nodes);
    }
  },
  render(r: ScenarioResult) {
    const lines: Array<Array<string | number>> = [];
    for (const level of LEVELS) {
      for (const sys of Object.keys(SYSTEMS) as System[]) {
        const m = rowOf(r.rows, `${sys}@${level}`).metrics;
        lines.push([
          level,
          SYSTEMS[sys],
          int(m.throughput),
          n3(m.p50),
          n3(m.p99),
          n3(m.p999),
          int(m.serverCpuPct),
          int(m.clientCpuPct),
          int(m.callsPerServerCpuS),
          int(m.callsPerClientCpuS),
          int(m.callsPerCpuS),
          n3(m.otherCores),
        ]);
      }
    }
    const ratios = LEVELS.map((level) => {
      const m = rowOf(r.rows, `ratio@${level}`).metrics;
      return [
        level,
        spread(m, 'throughputRatio', 0.95, 'high'),
        spread(m, 'p50Ratio', 1.05, 'low'),
        spread(m, 'p99Ratio'),
        spread(m, 'brokerThroughputRatio'),
        spread(m, 'brokerP50Ratio'),
        spread(m, 'serverEfficiencyRatio'),
        spread(m, 'clientEfficiencyRatio'),
      ];
    });
    return [
      table(
        ['in flight', 'system', 'calls/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'server CPU %', 'clients CPU %', 'calls/server CPU-s', 'calls/client CPU-s', 'calls/CPU-s (all)', 'other cores'],
        lines,
      ),
      '',
      'Ratios, peerbroker (broker + stub) over plain grpc-js; targets: throughput ≥ 0.95, p50 ≤ 1.05. ' +
        '"broker only" is the broker with a plain client (no stub); "efficiency" is calls per CPU-second.',
      '',
      table(
        ['in flight', 'throughput', 'p50', 'p99', 'broker only: throughput', 'broker only: p50', 'server efficiency', 'client efficiency'],
        ratios,
      ),
    ].join('\n');
  },
};
