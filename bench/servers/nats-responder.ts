/**
 * A NATS request-reply service in a queue group: what many users would build instead
 * of peerbroker. It runs the bank example's GetQuote handler (or echoes bytes) with the
 * same admission as a broker: `capacity` handlers at once, `maxQueue` more waiting,
 * beyond that an error reply. The NATS server spreads requests over the group at random.
 *
 *   node dist/bench/servers/nats-responder.js '{"nodeId":"q1","servers":["nats://127.0.0.1:4222"],...}'
 */
import type * as grpc from '@grpc/grpc-js';
import { connect, headers } from 'nats';
import { bankImplementations, bankProto } from '../../examples/bank';
import { Admission, ticket } from '../../src/broker/admission';

interface ResponderConfig {
  nodeId: string;
  servers: string[];
  subject: string;
  queue: string;
  mode: 'quote' | 'echo';
  work: number;
  capacity: number;
  maxQueue: number;
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as ResponderConfig;
  const nc = await connect({
    servers: cfg.servers,
    name: `responder-${cfg.nodeId}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
  });
  const def = bankProto().bank.Securities.service.GetQuote;
  const getQuote = bankImplementations(cfg.nodeId, cfg.work).securities.GetQuote as unknown as (
    call: { request: unknown },
    cb: grpc.sendUnaryData<unknown>,
  ) => void;
  const admission = new Admission(cfg.capacity, cfg.maxQueue, 1, () => {});
  const full = headers();
  full.set('error', 'RESOURCE_EXHAUSTED');
  nc.subscribe(cfg.subject, {
    queue: cfg.queue,
    callback: (err, msg) => {
      if (err) return;
      if (cfg.mode === 'echo') {
        msg.respond(msg.data);
        return;
      }
      if (admission.full()) {
        msg.respond(new Uint8Array(0), { headers: full });
        return;
      }
      const request = def.requestDeserialize(Buffer.from(msg.data));
      admission.admit(
        ticket(() =>
          getQuote({ request }, (e, res) => {
            admission.release();
            if (e) msg.respond(new Uint8Array(0), { headers: full });
            else msg.respond(def.responseSerialize(res as never));
          }),
        ),
      );
    },
  });
  await nc.flush();
  process.stdout.write(`responder: node ${cfg.nodeId} subscribed to ${cfg.subject}\n`);
  const stop = () => void nc.drain().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: Error) => {
  process.stderr.write(`nats-responder: ${err.stack ?? err}\n`);
  process.exit(1);
});
