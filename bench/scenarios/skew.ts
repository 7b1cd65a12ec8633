import { peerChoiceNames } from '../../src/policy';
import { NatsServer } from '../lib/nats';
import { configureCluster, startBrokerCluster, startResponder, stopNodes, type Node } from '../lib/nodes';
import { sleep } from '../lib/proc';
import { addIdealRatios, balanceTable, NODE_CAPACITY, runCell, WORK_MS, type System } from './balance';
import type { Ctx, Row, Scenario, ScenarioResult, Timeline } from './types';

const NODES = 3;
/**
 * Above one node's capacity (8 slots / ~10.5 ms ≈ 760/s), about half the cluster's (≈ 2,300/s).
 * Higher rates saturate this 2-core machine (three brokers, two generators, NATS): the
 * figures would then measure CPU contention, not balancing.
 */
export const SKEW_RATE = 1200;

/** Scenario 3: all traffic enters at node 1; how well is it spread? */
export const skew: Scenario = {
  name: 'skew',
  title: `3. Skew: ${NODES} nodes, capacity ${NODE_CAPACITY}, ${WORK_MS} ms work, ${SKEW_RATE} calls/s offered, all entering at n1`,
  async run(ctx: Ctx) {
    const warmupMs = ctx.quick ? 500 : 2000;
    const durationMs = ctx.quick ? 1400 : 5000;
    const rules = peerChoiceNames();
    // Rotate the order per run so no rule always runs first (or last) on a warming machine.
    const order = rules.map((_, i) => rules[(i + ctx.run) % rules.length]);
    const nats = await NatsServer.start('skew');
    const rows: Row[] = [];
    const timelines: Record<string, Timeline> = {};
    const cell = async (system: System, nodes: Node[]) => {
      ctx.log(`skew: ${system}`);
      const { row, timeline } = await runCell({ system, nodes, nats, rate: SKEW_RATE, warmupMs, durationMs, id: system });
      rows.push(row);
      timelines[system] = timeline;
    };
    try {
      const cluster = `skew-${ctx.run}`;
      const nodes = await startBrokerCluster(NODES, { nats: [nats.url], cluster, capacity: NODE_CAPACITY, workMs: WORK_MS, peerChoice: order[0] });
      try {
        // Plain clients are never redirected: the rule does not matter for them.
        await cell('none', nodes);
        await cell('ideal', nodes);
        for (const [i, rule] of order.entries()) {
          // The rule is switched at run time on every node (`peerbroker config set peer-choice=...`).
          if (i > 0) {
            await configureCluster(nodes, nats.url, cluster, { peerChoice: rule });
            await sleep(500);
          }
          await cell(`pb:${rule}`, nodes);
        }
      } finally {
        await stopNodes(nodes);
      }
      const responders = await Promise.all(
        Array.from({ length: NODES }, (_, i) =>
          startResponder({ nodeId: `n${i + 1}`, servers: [nats.url], subject: 'bench.quote', mode: 'quote', work: WORK_MS, capacity: NODE_CAPACITY }),
        ),
      );
      try {
        await cell('nats-qg', responders);
      } finally {
        await stopNodes(responders);
      }
    } finally {
      await nats.stop();
    }
    addIdealRatios(rows, 'ideal');
    const ids = ['none', 'ideal', 'nats-qg', ...rules.map((r) => `pb:${r}`)];
    return { rows: ids.map((id) => rows.find((r) => r.id === id)!).filter(Boolean), timelines };
  },
  render(r: ScenarioResult) {
    return [
      balanceTable(r.rows, ['n1', 'n2', 'n3'], [['system', (row) => row.labels.system]]),
      '',
      'Targets for peerbroker: p99 ≤ 1.25 × the ideal\'s, throughput ≥ 0.95 × the ideal\'s. "failed/s" counts ' +
        'rejected, timed-out and skipped calls (a generator skips a call when 400 of its own are in flight). ' +
        'One cluster per run; the peer-choice rule is switched on every node at run time between cells.',
    ].join('\n');
  },
};
