import * as path from 'node:path';
import { decide, peerChoiceByName, peerChoiceNames, type CallInfo, type PeerEntry, type PolicyConfig, type SelfState } from '../../src/policy';
import { int, n3, table } from '../lib/format';
import { NatsServer } from '../lib/nats';
import { onlineMembers, startBroker, stopNodes, type Node } from '../lib/nodes';
import { CpuWindow, sleep, startProcess, stopChild, waitForLine, type Child } from '../lib/proc';
import type { Ctx, Row, Scenario, ScenarioResult } from './types';

const SIZES = [10, 50, 200];
const PERIOD_MS = 500;
const DECISION_SIZES = [10, 50, 200, 1000];
const SIM = path.resolve(__dirname, '..', 'servers', 'report-sim.js');

/** The cost of one decision with `n` eligible peers when this node is over threshold, µs. */
function decisionUs(n: number, rule: string): number {
  const now = performance.now();
  const services = new Set(['bank.Securities']);
  const peers: PeerEntry[] = Array.from({ length: n }, (_, i) => ({
    nodeId: `p${i}`,
    endpoint: `127.0.0.1:${20000 + i}`,
    status: 'ONLINE',
    occupancy: (i % 10) / 20,
    maxQueue: 256,
    extra: 0,
    capacity: 64,
    services,
    receivedAt: now,
    periodMs: 500,
  }));
  const self: SelfState = { nodeId: 'n0', load: 0.9, running: 58, queued: 0, capacity: 64, maxQueue: 256, hosts: () => true };
  const cfg: PolicyConfig = { threshold: 0.5, margin: 0.2, maxHops: 2, staleAfterPeriods: 2 };
  const choice = peerChoiceByName(rule);
  const call: CallInfo = { path: '/bank.Securities/GetQuote', service: 'bank.Securities', hops: 0, follows: true, advised: false, session: '', sessionOwner: '' };
  const iterations = Math.max(2_000, Math.round(2_000_000 / n));
  for (let i = 0; i < iterations / 10; i++) decide(call, self, peers, cfg, choice, now);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) decide(call, self, peers, cfg, choice, now);
  return Number(process.hrtime.bigint() - t0) / 1000 / iterations;
}

/** Scenario 5: load-report traffic and CPU as the cluster grows, on one NATS server. */
export const controlPlane: Scenario = {
  name: 'control-plane',
  title: `5. Scale of the control plane: ${SIZES.join(' / ')} nodes' reports every ${PERIOD_MS} ms on one NATS server`,
  async run(ctx: Ctx) {
    const warmupMs = ctx.quick ? 1000 : 2000;
    const windowMs = ctx.quick ? 1500 : 4000;
    const rows: Row[] = [];
    for (const size of SIZES) {
      const nats = await NatsServer.start(`cp-${size}`);
      const nodes: Node[] = [];
      let sim: Child | undefined;
      try {
        // One real broker (its CPU is "per node"), and size-1 simulated peers, each with its own connection.
        const observer = await startBroker({ id: 'n0', nats: [nats.url], cluster: 'cp', periodMs: PERIOD_MS });
        nodes.push(observer);
        const ids = Array.from({ length: size - 1 }, (_, i) => `s${i + 1}`);
        sim = startProcess(`report-sim ${size}`, process.execPath, [
          SIM,
          JSON.stringify({ servers: [nats.url], cluster: 'cp', nodes: ids, periodMs: PERIOD_MS, durationMs: warmupMs + windowMs + 8_000 }),
        ]);
        await waitForLine(sim, /nodes connected/, 30_000);
        ctx.log(`control-plane: ${size} nodes`);
        await sleep(warmupMs);
        const cpu = new CpuWindow([observer.child.pid, nats.pid, sim.pid]);
        const v0 = await nats.varz();
        cpu.start();
        await sleep(windowMs);
        const v1 = await nats.varz();
        const { cpu: used, wallMs } = cpu.stop();
        const sec = wallMs / 1000;
        const members = await onlineMembers(observer);
        const delivered = (v1.out_msgs - v0.out_msgs) / sec;
        const natsMs = used.get(nats.pid)!;
        const nodeMs = used.get(observer.child.pid)!;
        rows.push({
          id: `n=${size}`,
          labels: { nodes: String(size) },
          metrics: {
            nodes: size,
            peersSeen: members - 1,
            reportsPerSec: (v1.in_msgs - v0.in_msgs) / sec,
            deliveredPerSec: delivered,
            bytesInPerSec: (v1.in_bytes - v0.in_bytes) / sec,
            bytesOutPerSec: (v1.out_bytes - v0.out_bytes) / sec,
            bytesPerNodePerSec: (v1.out_bytes - v0.out_bytes) / sec / size,
            reportsPerNodePerSec: delivered / size,
            natsCpuPct: (100 * natsMs) / wallMs,
            natsUsPerDelivered: (1000 * natsMs) / (v1.out_msgs - v0.out_msgs),
            nodeCpuPct: (100 * nodeMs) / wallMs,
            nodeUsPerReport: (1000 * nodeMs) / ((delivered / size) * sec),
            simCpuPct: (100 * used.get(sim.pid)!) / wallMs,
          },
        });
      } finally {
        if (sim) await stopChild(sim);
        await stopNodes(nodes);
        await nats.stop();
      }
    }
    // The per-call decision scans every peer when this node is over threshold.
    for (const n of DECISION_SIZES) {
      const metrics: Record<string, number> = { peers: n };
      for (const rule of peerChoiceNames()) metrics[`decide:${rule}`] = decisionUs(n, rule);
      rows.push({ id: `decide@${n}`, labels: { peers: String(n) }, metrics });
    }
    return { rows, notes: [] };
  },
  render(r: ScenarioResult) {
    const sizes = r.rows.filter((x) => x.id.startsWith('n='));
    const traffic = table(
      ['nodes', 'peers seen by a node', 'reports/s into NATS', 'messages/s out of NATS', 'NATS out', 'reports/s per node', 'bytes/s per node', 'NATS CPU %', 'NATS CPU µs/message', 'one node CPU %', 'node CPU µs/report'],
      sizes.map((x) => {
        const m = x.metrics;
        return [
          int(m.nodes),
          int(m.peersSeen),
          int(m.reportsPerSec),
          int(m.deliveredPerSec),
          `${n3(m.bytesOutPerSec / 1e6)} MB/s`,
          int(m.reportsPerNodePerSec),
          `${n3(m.bytesPerNodePerSec / 1e3)} kB/s`,
          n3(m.natsCpuPct),
          n3(m.natsUsPerDelivered),
          n3(m.nodeCpuPct),
          n3(m.nodeUsPerReport),
        ];
      }),
    );
    const rules = Object.keys(r.rows.find((x) => x.id.startsWith('decide@'))?.metrics ?? {})
      .filter((k) => k.startsWith('decide:'))
      .map((k) => k.slice(7));
    const decisions = table(
      ['peers', ...rules.map((x) => `${x} µs/decision`)],
      r.rows.filter((x) => x.id.startsWith('decide@')).map((x) => [x.labels.peers, ...rules.map((rule) => n3(x.metrics[`decide:${rule}`]))]),
    );
    return [traffic, '', 'Cost of one decision over threshold (scans every peer), in the bench process:', '', decisions, '', shardingNote(r.rows)].join('\n');
  },
};

/** Where one subject per node (everyone hears everyone) stops being cheap, from the measured slopes. */
function shardingNote(rows: Row[]): string {
  const big = rows.find((x) => x.id === `n=${SIZES[SIZES.length - 1]}`)?.metrics;
  const small = rows.find((x) => x.id === `n=${SIZES[0]}`)?.metrics;
  if (!big || !small) return '';
  const perMsgUs = big.natsUsPerDelivered;
  // NATS delivers n² / period messages: n at which the server would use half a core.
  const nHalfCore = Math.sqrt((0.5e6 * PERIOD_MS) / 1000 / perMsgUs);
  // Per node: the marginal CPU of a report, from the slope between the smallest and largest size.
  const slopeUs = ((big.nodeCpuPct - small.nodeCpuPct) * 1e4) / (big.reportsPerNodePerSec - small.reportsPerNodePerSec);
  const nNode5 = (0.05e6 / Math.max(slopeUs, 0.01)) * (PERIOD_MS / 1000);
  const decide = rows.find((x) => x.id === 'decide@1000')?.metrics;
  return (
    `Reading: every node hears every report, so NATS delivers n²/period messages (${int(big.deliveredPerSec)}/s at ${big.nodes} nodes) ` +
    `at about ${n3(perMsgUs)} µs of server CPU each: one server would spend half a core near **${int(nHalfCore)} nodes**. ` +
    `A node spends about ${n3(slopeUs)} µs per report it hears (marginal, from the ${small.nodes}→${big.nodes} slope), ` +
    `so 5 % of a core near **${int(nNode5)} nodes**. ` +
    (decide ? `A decision over threshold scans every peer: ${n3(Math.max(...Object.entries(decide).filter(([k]) => k.startsWith('decide:')).map(([, v]) => v)))} µs at 1,000 peers. ` : '') +
    'Past a few hundred nodes, shard the subjects (`peerbroker.C.load.<service-group>.<node>`, each node subscribing only to the groups it can redirect to, or a zone level) rather than one flat `load.*`.'
  );
}
