/**
 * A Moleculer service broker hosting `echo.echo` over the NATS transporter (JSON
 * serializer, the default). Prints `moleculer: node ID ready` once started.
 *
 *   node dist/bench/servers/moleculer-node.js '{"nodeId":"m1","servers":["nats://127.0.0.1:4222"]}'
 */
import { ServiceBroker, type Context } from 'moleculer';

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as { nodeId: string; servers: string[] };
  const broker = new ServiceBroker({
    nodeID: cfg.nodeId,
    transporter: { type: 'NATS', options: { servers: cfg.servers, maxReconnectAttempts: -1 } },
    logger: false,
    metrics: false,
    tracing: false,
  });
  broker.createService({
    name: 'echo',
    actions: {
      echo: (ctx: Context<{ data: string }>) => ({ data: ctx.params.data }),
    },
  });
  await broker.start();
  process.stdout.write(`moleculer: node ${cfg.nodeId} ready\n`);
  const stop = () => void broker.stop().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: Error) => {
  process.stderr.write(`moleculer-node: ${err.stack ?? err}\n`);
  process.exit(1);
});
