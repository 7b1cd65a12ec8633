import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Broker, brokerProto, inProcessBus } from '../../src';
import { createLogger } from '../../src/log';
import { register } from '../bank';
import { startChild, stopAll, type DemoChild } from './processes';

/** Settings every demo broker runs with. */
export interface DemoBrokerSettings {
  /** Node ids, in order; calls are sent to the first. */
  nodeIds: string[];
  cluster: string;
  /** Concurrent calls at 100 % load. */
  capacity: number;
  /** Load report period, ms. */
  periodMs: number;
  /** Simulated work per bank call (BANK_WORK_MS), ms. */
  workMs: number;
}

/** One broker of the demo, as a client reaches it. */
export interface DemoNode {
  nodeId: string;
  endpoint: string;
}

/** The three brokers (and their NATS server), however they were started. */
export interface DemoCluster {
  readonly mode: 'nats' | 'in-process';
  /** What the live view header says about the control plane. */
  readonly description: string;
  readonly nodes: DemoNode[];
  /** Set when a process died while the demo ran: which one, and its last output. */
  failure(): string | undefined;
  /** Stops every broker, then the NATS server; safe to call twice. */
  stop(): Promise<void>;
}

/** How long a started process gets to say it is ready. */
export const DEFAULT_READY_TIMEOUT_MS = 15_000;

/** How long the brokers get to see each other's reports. */
export const DEFAULT_MEMBERS_TIMEOUT_MS = 5_000;

// Compiled to dist/examples/demo/: the CLI and the bank module sit next to it in dist/.
const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');
const BANK_MODULE = path.resolve(__dirname, '..', 'bank', 'index.js');

/**
 * Starts one nats-server on 127.0.0.1 and one broker process per node id.
 * Ports are picked by the servers themselves (nats `-p -1`, gRPC port 0) and read
 * back from their ready lines, so no other process can take them in between.
 */
export async function startProcessCluster(natsBinary: string, s: DemoBrokerSettings): Promise<DemoCluster> {
  let stopping = false;
  let died: string | undefined;
  const watch = (c: DemoChild) => {
    void c.exited.then(() => {
      if (stopping || died) return;
      const how = c.process.signalCode ? `killed by ${c.process.signalCode}` : `exit code ${c.process.exitCode}`;
      died = `${c.name} (pid ${c.pid}) exited unexpectedly (${how}); its last output:\n${indent(c.output() || '(no output)')}`;
    });
  };
  // Brokers first, so they leave cleanly while NATS is still up.
  const stop = async () => {
    stopping = true;
    await stopAll((c) => c.name.startsWith('broker'));
  };
  try {
    const nats = await startChild('nats-server', natsBinary, ['-a', '127.0.0.1', '-p', '-1', '--server_name', `peerbroker-demo-${process.pid}`]);
    watch(nats);
    const [, natsAddress] = await nats
      .waitForLine(/Listening for client connections on (\S+)/, DEFAULT_READY_TIMEOUT_MS)
      .catch((err) => Promise.reject(failedToStart(nats, err)));
    await nats.waitForLine(/Server is ready/, DEFAULT_READY_TIMEOUT_MS).catch((err) => Promise.reject(failedToStart(nats, err)));
    const natsUrl = `nats://${natsAddress}`;

    const env = { ...process.env, BANK_WORK_MS: String(s.workMs) };
    const nodes = await Promise.all(
      s.nodeIds.map(async (nodeId): Promise<DemoNode> => {
        const args = [
          CLI, 'start',
          '--node-id', nodeId,
          '--listen', '127.0.0.1:0',
          '--nats', natsUrl,
          '--cluster', s.cluster,
          '--capacity', String(s.capacity),
          '--period-ms', String(s.periodMs),
          '--module', BANK_MODULE,
        ];
        const broker = await startChild(`broker ${nodeId}`, process.execPath, args, env);
        watch(broker);
        const [, endpoint] = await broker
          .waitForLine(new RegExp(`^peerbroker: node ${nodeId} listening on (\\S+)$`), DEFAULT_READY_TIMEOUT_MS)
          .catch((err) => Promise.reject(failedToStart(broker, err)));
        return { nodeId, endpoint };
      }),
    );
    await waitForMembers(nodes, DEFAULT_MEMBERS_TIMEOUT_MS);
    return {
      mode: 'nats',
      description: `${s.nodeIds.length} broker processes, load reports over NATS (nats-server ${natsUrl}, pid ${nats.pid})`,
      nodes,
      failure: () => died,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Starts the brokers inside this process, sharing an in-process exchange instead of NATS. */
export async function startInProcessCluster(s: DemoBrokerSettings): Promise<DemoCluster> {
  // The bank module reads its simulated work from the environment, as in a broker process.
  process.env.BANK_WORK_MS = String(s.workMs);
  const bus = inProcessBus();
  const logger = createLogger({ level: process.env.PEERBROKER_LOG_LEVEL ?? 'warn' });
  const brokers: Broker[] = [];
  const stop = async () => {
    await Promise.all(brokers.map((b) => b.stop()));
  };
  try {
    for (const nodeId of s.nodeIds) {
      const broker = new Broker({
        nodeId,
        exchange: bus.exchange(),
        cluster: s.cluster,
        capacity: s.capacity,
        periodMs: s.periodMs,
        listen: '127.0.0.1:0',
        logger,
      });
      register(broker);
      brokers.push(broker);
      await broker.start();
    }
    const nodes = brokers.map((b) => ({ nodeId: b.nodeId, endpoint: b.endpoint }));
    await waitForMembers(nodes, DEFAULT_MEMBERS_TIMEOUT_MS);
    return {
      mode: 'in-process',
      description: `${s.nodeIds.length} brokers in this one process, load reports over an in-process exchange, not NATS`,
      nodes,
      failure: () => undefined,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Resolves once every node lists every node as ONLINE (so the first calls can already be balanced). */
async function waitForMembers(nodes: DemoNode[], timeoutMs: number): Promise<void> {
  const Client = brokerProto().peerbroker.v1.Broker;
  const clients = nodes.map((n) => new Client(n.endpoint, grpc.credentials.createInsecure()));
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const seen = await Promise.all(
        clients.map(
          (c) =>
            new Promise<number>((resolve) =>
              c.Members({}, { deadline: Date.now() + 1_000 }, (err, res) =>
                resolve(err || !res ? 0 : res.members.filter((m) => m.status === 'ONLINE').length),
              ),
            ),
        ),
      );
      if (seen.every((n) => n >= nodes.length)) return;
      if (Date.now() > deadline) {
        const detail = nodes.map((n, i) => `${n.nodeId} sees ${seen[i]}`).join(', ');
        throw new Error(`the brokers did not see each other within ${timeoutMs} ms (${detail} of ${nodes.length} on-line)`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    for (const c of clients) c.close();
  }
}

function failedToStart(child: DemoChild, err: Error): Error {
  return new Error(`${child.name} failed to start: ${err.message}\n${indent(child.output() || '(no output)')}`);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
