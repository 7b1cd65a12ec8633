/**
 * Simulates many nodes of a cluster on the control plane only: each has its own NATS
 * connection, subscribes to every load subject (as a broker does) and publishes a real
 * encoded load report every period, jittered ±10 %. Bounded: it stops after `durationMs`.
 *
 *   node dist/bench/servers/report-sim.js '{"servers":[...],"cluster":"c","nodes":["s1",...],"periodMs":500,"durationMs":20000}'
 */
import { connect, type NatsConnection } from 'nats';
import { loadSubject } from '../../src/cluster/exchange';
import { encodeReport } from '../../src/cluster/report-codec';

interface SimConfig {
  servers: string[];
  cluster: string;
  nodes: string[];
  periodMs: number;
  durationMs: number;
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as SimConfig;
  const stopAt = Date.now() + cfg.durationMs;
  setTimeout(() => process.exit(0), cfg.durationMs + 5_000).unref();
  let received = 0;
  let sent = 0;
  const conns: NatsConnection[] = [];
  // Connect in small batches: a burst of hundreds of connections at once is not what a cluster does.
  for (let i = 0; i < cfg.nodes.length; i += 20) {
    const batch = await Promise.all(
      cfg.nodes.slice(i, i + 20).map((id) => connect({ servers: cfg.servers, name: `sim-${id}`, noEcho: true })),
    );
    for (const nc of batch) {
      nc.subscribe(loadSubject(cfg.cluster, '*'), { callback: () => received++ });
      conns.push(nc);
    }
  }
  const incarnation = Date.now();
  cfg.nodes.forEach((id, i) => {
    const nc = conns[i];
    let seq = 0;
    const publish = () => {
      if (Date.now() >= stopAt) return;
      const load = Math.random();
      nc.publish(
        loadSubject(cfg.cluster, id),
        encodeReport({
          cluster: cfg.cluster,
          nodeId: id,
          endpoint: `127.0.0.1:${20000 + i}`,
          incarnation,
          maxQueue: 256,
          seq: ++seq,
          sentAtMs: Date.now(),
          load,
          inFlight: Math.round(load * 64),
          capacity: 64,
          status: 'ONLINE',
          services: ['bank.Banking', 'bank.Securities'],
          endpoints: [`127.0.0.1:${20000 + i}`],
          periodMs: cfg.periodMs,
          queued: 0,
          loopDelayMs: 1.2,
          callsRun: seq * 100,
          callsRedirected: seq * 10,
        }),
      );
      sent++;
      setTimeout(publish, cfg.periodMs * (0.9 + 0.2 * Math.random()));
    };
    setTimeout(publish, Math.random() * cfg.periodMs);
  });
  await Promise.all(conns.map((nc) => nc.flush()));
  process.stdout.write(`sim: ${cfg.nodes.length} nodes connected\n`);
  const report = setInterval(() => process.stdout.write(`sim: sent ${sent} received ${received}\n`), 1_000);
  await new Promise((r) => setTimeout(r, Math.max(0, stopAt - Date.now())));
  clearInterval(report);
  await Promise.all(conns.map((nc) => nc.close()));
  process.exit(0);
}

main().catch((err: Error) => {
  process.stderr.write(`report-sim: ${err.stack ?? err}\n`);
  process.exit(1);
});
