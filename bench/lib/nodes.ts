import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connect } from 'nats';
import { brokerProto } from '../../src/transport';
import { configSubject, newConfigMessage } from '../../src/cluster/runtime-config';
import { sleep, startProcess, stopAll, waitForLine, type Child } from './proc';

const DIST = path.resolve(__dirname, '..', '..');
/** The peerbroker CLI, as built. */
export const CLI = path.join(DIST, 'src', 'cli', 'main.js');
/** The bank example module for `--module`. */
export const BANK_MODULE = path.join(DIST, 'examples', 'bank', 'index.js');
/** The bench's echo module for `--module`. */
export const ECHO_MODULE = path.join(DIST, 'bench', 'servers', 'echo-module.js');
const SERVERS = path.join(DIST, 'bench', 'servers');

/** A server process with the address clients use. */
export interface Node {
  id: string;
  endpoint: string;
  child: Child;
}

/** Options of a broker started with the CLI. */
export interface BrokerNodeOptions {
  id: string;
  nats?: string[];
  cluster?: string;
  capacity?: number;
  periodMs?: number;
  peerChoice?: string;
  /** BANK_WORK_MS for the bank module. */
  workMs?: number;
  module?: string;
  extraArgs?: string[];
  /** Extra environment of the process (e.g. BANK_WORK_CPU). */
  env?: NodeJS.ProcessEnv;
  /** Flags of node itself, before the CLI (e.g. `--trace-gc`). */
  nodeArgs?: string[];
}

/** Starts `peerbroker start` as a process and waits for its listening line. */
export async function startBroker(o: BrokerNodeOptions): Promise<Node> {
  const args = [...(o.nodeArgs ?? []), CLI, 'start', '--node-id', o.id, '--listen', '127.0.0.1:0', '--module', o.module ?? BANK_MODULE];
  if (o.nats?.length) args.push('--nats', o.nats.join(','));
  if (o.cluster) args.push('--cluster', o.cluster);
  if (o.capacity !== undefined) args.push('--capacity', String(o.capacity));
  if (o.periodMs !== undefined) args.push('--period-ms', String(o.periodMs));
  if (o.peerChoice) args.push('--peer-choice', o.peerChoice);
  args.push(...(o.extraArgs ?? []));
  const child = startProcess(`broker ${o.id}`, process.execPath, args, { ...o.env, BANK_WORK_MS: String(o.workMs ?? 0) });
  const line = await waitForLine(child, /peerbroker: node \S+ listening on (\S+)/, 20_000);
  return { id: o.id, endpoint: /listening on (\S+)/.exec(line)![1], child };
}

/** Starts a broker built in code (`broker-host`), e.g. with a fixed load meter. */
export async function startBrokerHost(id: string, config: object): Promise<Node> {
  const child = startProcess(`broker-host ${id}`, process.execPath, [path.join(SERVERS, 'broker-host.js'), JSON.stringify(config)]);
  const line = await waitForLine(child, /peerbroker: node \S+ listening on (\S+)/, 20_000);
  return { id, endpoint: /listening on (\S+)/.exec(line)![1], child };
}

/** Starts a plain grpc-js server with the bank handlers (or bench.Echo). */
export async function startPlainServer(id: string, work: number, service: 'bank' | 'echo' = 'bank'): Promise<Node> {
  const cfg = { nodeId: id, listen: '127.0.0.1:0', work, service };
  const child = startProcess(`plain ${id}`, process.execPath, [path.join(SERVERS, 'plain-server.js'), JSON.stringify(cfg)]);
  const line = await waitForLine(child, /listening on (\S+)/, 20_000);
  return { id, endpoint: /listening on (\S+)/.exec(line)![1], child };
}

/** Starts a NATS queue-group responder. */
export async function startResponder(cfg: {
  nodeId: string;
  servers: string[];
  subject: string;
  mode: 'quote' | 'echo';
  work: number;
  capacity: number;
  /** Extra environment of the process (e.g. BANK_WORK_CPU). */
  env?: NodeJS.ProcessEnv;
}): Promise<Node> {
  const { env, ...rest } = cfg;
  const full = { queue: 'bench', maxQueue: 4 * cfg.capacity, ...rest };
  const child = startProcess(`responder ${cfg.nodeId}`, process.execPath, [path.join(SERVERS, 'nats-responder.js'), JSON.stringify(full)], env);
  await waitForLine(child, /subscribed/, 20_000);
  return { id: cfg.nodeId, endpoint: cfg.subject, child };
}

/** Starts a Moleculer node hosting `echo.echo`. */
export async function startMoleculer(nodeId: string, servers: string[]): Promise<Node> {
  const child = startProcess(`moleculer ${nodeId}`, process.execPath, [
    path.join(SERVERS, 'moleculer-node.js'),
    JSON.stringify({ nodeId, servers }),
  ]);
  await waitForLine(child, /ready/, 20_000);
  return { id: nodeId, endpoint: nodeId, child };
}

/** A cluster of CLI brokers: node 1 first (so it hears every other node's first report). */
export async function startBrokerCluster(n: number, base: Omit<BrokerNodeOptions, 'id'>): Promise<Node[]> {
  const first = await startBroker({ ...base, id: 'n1' });
  const rest = await Promise.all(Array.from({ length: n - 1 }, (_, i) => startBroker({ ...base, id: `n${i + 2}` })));
  const nodes = [first, ...rest];
  await waitForMembers(nodes, Math.max(10_000, 4 * (base.periodMs ?? 500)));
  return nodes;
}

/** How many members (itself included) a broker lists as ONLINE now; 0 if it does not answer. */
export async function onlineMembers(node: Node): Promise<number> {
  const c = new (brokerProto().peerbroker.v1.Broker)(node.endpoint, grpc.credentials.createInsecure());
  try {
    return await new Promise<number>((resolve) =>
      c.Members({}, { deadline: Date.now() + 1_000 }, (err, res) =>
        resolve(err || !res ? 0 : res.members.filter((m) => m.status === 'ONLINE').length),
      ),
    );
  } finally {
    c.close();
  }
}

/** Resolves once every node lists every other one as ONLINE (bounded by `timeoutMs`). */
export async function waitForMembers(nodes: Node[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = await Promise.all(nodes.map(onlineMembers));
    if (seen.every((s) => s >= nodes.length)) return;
    if (Date.now() > deadline) throw new Error(`brokers do not see each other after ${timeoutMs} ms: ${seen.join(', ')}`);
    await sleep(100);
  }
}

/** Stops every node (SIGTERM by PID; brokers say LEAVING). */
export function stopNodes(nodes: Node[]): Promise<void> {
  return stopAll(nodes.map((n) => n.child));
}

/**
 * Changes runtime settings on every node of a live cluster (what `peerbroker config set`
 * does), and resolves once each node has logged that it applied this very version.
 */
export async function configureCluster(nodes: Node[], natsUrl: string, cluster: string, values: Record<string, unknown>): Promise<void> {
  const nc = await connect({ servers: natsUrl, name: 'bench-config' });
  try {
    const m = newConfigMessage(values);
    nc.publish(configSubject(cluster), Buffer.from(JSON.stringify(m)));
    await nc.flush();
    const applied = new RegExp(`"version":"${m.version}".*config applied`);
    await Promise.all(nodes.map((n) => waitForLine(n.child, applied, 10_000)));
  } finally {
    await nc.close();
  }
}
