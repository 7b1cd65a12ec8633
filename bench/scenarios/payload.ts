import type { LoadConfig, Target } from '../load/protocol';
import { int, n3, table } from '../lib/format';
import { runLoad, summarize } from '../lib/load';
import { NatsServer } from '../lib/nats';
import { ECHO_MODULE, startBroker, startMoleculer, startResponder, stopNodes, type Node } from '../lib/nodes';
import type { Ctx, Row, Scenario, ScenarioResult } from './types';

const SIZES = [1024, 64 * 1024, 1024 * 1024];
const IN_FLIGHT = 8;
type System = 'peerbroker' | 'nats' | 'moleculer';
const SYSTEMS: Record<System, string> = {
  peerbroker: 'peerbroker (direct gRPC)',
  nats: 'NATS request-reply',
  moleculer: 'Moleculer over NATS',
};

function sizeLabel(b: number): string {
  return b >= 1024 * 1024 ? `${b / 1024 / 1024} MiB` : `${b / 1024} KiB`;
}

/** Scenario 6: message size; the broker's data path is direct gRPC, the others go through the NATS server. */
export const payload: Scenario = {
  name: 'payload',
  title: `6. Payload size: ${SIZES.map(sizeLabel).join(' / ')} each way, ${IN_FLIGHT} calls in flight`,
  async run(ctx: Ctx) {
    const warmupMs = ctx.quick ? 200 : 700;
    const durationMs = ctx.quick ? 700 : 2500;
    // NATS refuses messages over max_payload (1 MiB by default): 1 MiB plus an envelope needs more.
    const nats = await NatsServer.start('payload', { config: 'max_payload: 8388608\n' });
    const nodes: Node[] = [];
    try {
      const pb = await startBroker({ id: 'n1', nats: [nats.url], cluster: 'payload', capacity: 10_000, module: ECHO_MODULE });
      nodes.push(pb);
      const responder = await startResponder({ nodeId: 'q1', servers: [nats.url], subject: 'bench.echo', mode: 'echo', work: 0, capacity: 10_000 });
      nodes.push(responder);
      const mol = await startMoleculer('m1', [nats.url]);
      nodes.push(mol);
      const server: Record<System, Node> = { peerbroker: pb, nats: responder, moleculer: mol };
      const rows: Row[] = [];
      for (const size of SIZES) {
        let order: System[] = ['peerbroker', 'nats', 'moleculer'];
        if (ctx.run % 2 === 1) order = order.reverse();
        for (const sys of order) {
          const target: Target =
            sys === 'peerbroker'
              ? { kind: 'stub', endpoints: [pb.endpoint] }
              : sys === 'nats'
                ? { kind: 'nats', servers: [nats.url], subject: 'bench.echo' }
                : { kind: 'moleculer', servers: [nats.url] };
          const cfg: LoadConfig = {
            id: `${sys}-${size}`,
            target,
            call: { kind: 'echo', bytes: size },
            mode: { kind: 'closed', concurrency: IN_FLIGHT },
            warmupMs,
            durationMs,
            maxCalls: 1_000_000,
            deadlineMs: 10_000,
            bucketMs: 250,
          };
          ctx.log(`payload: ${sys}, ${sizeLabel(size)}`);
          const run = await runLoad([cfg], [server[sys].child, nats.child]);
          const s = summarize(run.results, 250);
          const serverMs = run.serverCpuMs[server[sys].child.name];
          const natsMs = run.serverCpuMs[nats.child.name];
          rows.push({
            id: `${sys}@${size}`,
            labels: { system: SYSTEMS[sys], size: sizeLabel(size), errors: Object.keys(s.errors).join(', ') },
            metrics: {
              throughput: s.throughput,
              mbPerSec: (s.throughput * size * 2) / 1e6,
              p50: s.p50,
              p99: s.p99,
              p999: s.p999,
              errorsPerSec: s.errorsPerSec,
              clientUsPerCall: (1000 * s.clientCpuMs) / s.okCalls,
              serverUsPerCall: (1000 * serverMs) / s.okCalls,
              natsUsPerCall: (1000 * natsMs) / s.okCalls,
              totalUsPerCall: (1000 * (s.clientCpuMs + serverMs + natsMs)) / s.okCalls,
              otherCores: run.otherCores,
              attempts: run.attempts,
            },
          });
        }
      }
      return { rows };
    } finally {
      await stopNodes(nodes);
      await nats.stop();
    }
  },
  render(r: ScenarioResult) {
    const lines = SIZES.flatMap((size) =>
      (Object.keys(SYSTEMS) as System[]).map((sys) => {
        const row = r.rows.find((x) => x.id === `${sys}@${size}`);
        const m = row?.metrics ?? {};
        return [
          sizeLabel(size),
          SYSTEMS[sys],
          int(m.throughput),
          n3(m.mbPerSec),
          n3(m.p50),
          n3(m.p99),
          n3(m.p999),
          int(m.clientUsPerCall),
          int(m.serverUsPerCall),
          int(m.natsUsPerCall),
          int(m.totalUsPerCall),
          m.errorsPerSec ? `${int(m.errorsPerSec)}/s ${row?.labels.errors ?? ''}` : '0',
        ];
      }),
    );
    return [
      table(
        ['size', 'system', 'calls/s', 'MB/s (both ways)', 'p50 ms', 'p99 ms', 'p99.9 ms', 'client CPU µs/call', 'server CPU µs/call', 'NATS server CPU µs/call', 'total CPU µs/call', 'failed'],
        lines,
      ),
      '',
      'gRPC and NATS carry raw bytes (no serialization); Moleculer sends a string of the same length in its default JSON ' +
        'envelope. For peerbroker the NATS server only carries load reports. NATS ran with `max_payload` raised to 8 MiB: ' +
        'its 1 MiB default refuses a 1 MiB message plus any envelope.',
    ].join('\n');
  },
};
