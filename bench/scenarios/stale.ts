import { peerChoiceNames } from '../../src/policy';
import { n3, ratio, spread, table } from '../lib/format';
import { NatsServer } from '../lib/nats';
import { configureCluster, startBrokerCluster, stopNodes } from '../lib/nodes';
import { sleep } from '../lib/proc';
import { addIdealRatios, balanceTable, NODE_CAPACITY, runCell, WORK_MS } from './balance';
import type { Ctx, Row, Scenario, ScenarioResult, Timeline } from './types';

const NODES = 5;
export const PERIODS = [100, 500, 2000];
/** As in scenario 3: above one node's capacity (≈ 760/s), a third of the cluster's (≈ 3,800/s). */
export const STALE_RATE = 1200;

/** Scenario 4: scenario 3 with 5 nodes and older reports. */
export const stale: Scenario = {
  name: 'stale',
  title: `4. Stale information: ${NODES} nodes, ${STALE_RATE} calls/s at n1, report period ${PERIODS.join(' / ')} ms`,
  async run(ctx: Ctx) {
    const warmupMs = ctx.quick ? 500 : 2000;
    const durationMs = ctx.quick ? 1000 : 4000;
    const rules = peerChoiceNames();
    const order = rules.map((_, i) => rules[(i + ctx.run) % rules.length]);
    const nats = await NatsServer.start('stale');
    const rows: Row[] = [];
    const timelines: Record<string, Timeline> = {};
    // Longest period first: a node that shortens its period is never judged stale by the old one.
    const periods = [...PERIODS].sort((a, b) => b - a);
    const cluster = `stale-${ctx.run}`;
    try {
      const nodes = await startBrokerCluster(NODES, {
        nats: [nats.url],
        cluster,
        capacity: NODE_CAPACITY,
        workMs: WORK_MS,
        periodMs: periods[0],
        peerChoice: order[0],
      });
      try {
        let current = { period: periods[0], rule: order[0] };
        for (const period of periods) {
          for (const rule of order) {
            if (period !== current.period || rule !== current.rule) {
              // Switched at run time on every node (`peerbroker config set period-ms=... peer-choice=...`).
              await configureCluster(nodes, nats.url, cluster, { periodMs: period, peerChoice: rule });
              // Let every node report at least once under the new period before the warm-up starts.
              await sleep(period !== current.period ? period + 200 : 300);
              current = { period, rule };
            }
            if (period === 500 && rule === order[0]) {
              ctx.log('stale: ideal');
              const ideal = await runCell({ system: 'ideal', nodes, nats, rate: STALE_RATE, warmupMs, durationMs, id: 'ideal', labels: { rule: 'ideal (client round-robin)', period: '–' } });
              rows.push(ideal.row);
              timelines.ideal = ideal.timeline;
            }
            ctx.log(`stale: ${rule}, period ${period} ms`);
            const id = `${rule}@${period}`;
            const c = await runCell({ system: `pb:${rule}`, nodes, nats, rate: STALE_RATE, warmupMs, durationMs, id, labels: { rule, period: String(period) } });
            rows.push(c.row);
            timelines[id] = c.timeline;
          }
        }
      } finally {
        await stopNodes(nodes);
      }
    } finally {
      await nats.stop();
    }
    addIdealRatios(rows, 'ideal');
    const ids = ['ideal', ...PERIODS.flatMap((p) => rules.map((r) => `${r}@${p}`))];
    return { rows: ids.map((id) => rows.find((r) => r.id === id)!).filter(Boolean), timelines };
  },
  render(r: ScenarioResult) {
    const rules = [...new Set(r.rows.filter((x) => x.id.includes('@')).map((x) => x.labels.rule))];
    const grid = table(
      ['rule', ...PERIODS.map((p) => `p99 ms @ ${p} ms`), ...PERIODS.map((p) => `p99/ideal @ ${p} ms`), ...PERIODS.map((p) => `calls/s / ideal @ ${p} ms`)],
      rules.map((rule) => {
        const at = (p: number) => r.rows.find((x) => x.id === `${rule}@${p}`)?.metrics ?? {};
        return [
          rule,
          ...PERIODS.map((p) => n3(at(p).p99)),
          ...PERIODS.map((p) => spread(at(p), 'p99VsIdeal', 1.25, 'low')),
          ...PERIODS.map((p) => spread(at(p), 'throughputVsIdeal', 0.95, 'high')),
        ];
      }),
    );
    return [
      balanceTable(r.rows, ['n1', 'n2', 'n3', 'n4', 'n5'], [
        ['rule', (row) => row.labels.rule ?? row.labels.system],
        ['period ms', (row) => row.labels.period ?? '–'],
      ]),
      '',
      'The same, as a grid (how each rule degrades as reports age):',
      '',
      grid,
    ].join('\n');
  },
};
