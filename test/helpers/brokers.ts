import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { addBank, bankProto } from '../../examples/bank';
import { Broker, brokerProto, createClient, MD_FOLLOW, MD_HOPS, MD_NODE, type BrokerOptions, type ClientOptions, type MemberInfo } from '../../src';
import type { BankingClient } from '../../src/generated/bank/Banking';
import type { SecuritiesClient } from '../../src/generated/bank/Securities';
import type { StatusResponse__Output } from '../../src/generated/peerbroker/v1/StatusResponse';
import type { BrokerClient } from '../../src/generated/peerbroker/v1/Broker';
import { createLogger } from '../../src/log';
import { closedOf, exitOf, killTracked, outputOf, spawnTracked, waitForLine, type ExitInfo } from './processes';

/** How long a broker process gets to print its listening line. */
export const DEFAULT_BROKER_READY_TIMEOUT_MS = 20_000;

const REPO_ROOT = path.resolve(__dirname, '..', '..');
/** The built CLI the broker processes run (`npm run build` makes it). */
export const CLI_PATH = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
/** The built bank example, loaded with `--module`. */
export const BANK_MODULE_PATH = path.join(REPO_ROOT, 'dist', 'examples', 'bank', 'index.js');

/**
 * Runs the built CLI (`node dist/src/cli/main.js ...args`) to completion as a tracked process,
 * with `env` added to this process's environment; resolves with its exit code and output.
 */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  const child = spawnTracked(process.execPath, [CLI_PATH, ...args], { env: { ...process.env, ...env } });
  const { code } = await exitOf(child);
  // Its output read to the end, so the last line is in it.
  await closedOf(child);
  return { code, output: outputOf(child) };
}

const LISTENING = /^peerbroker: node (\S+) listening on (\S+)$/;

// ---------------------------------------------------------------------------
// Broker processes (the CLI)

/** Options of `startBrokerProcess()`; every tunable left out takes the CLI's default. */
export interface BrokerProcessOptions {
  nodeId: string;
  /** NATS server URLs. */
  nats: string[];
  cluster: string;
  capacity?: number;
  threshold?: number;
  margin?: number;
  periodMs?: number;
  /** Loopback address to listen on. Default '127.0.0.1'. */
  listenHost?: string;
  /** Port to listen on. Default 0 (the broker picks one and prints it). */
  port?: number;
  /** Extra environment, e.g. `{ BANK_WORK_MS: '50' }`. */
  env?: Record<string, string>;
  /** Extra CLI arguments, appended last. */
  extraArgs?: string[];
  /** How long to wait for the listening line. Default 20 s. */
  readyTimeoutMs?: number;
  /** The CLI to run, e.g. an installed package's bin. Default this repository's dist/. */
  cliPath?: string;
  /** The module exporting register(broker). Default the bank example. */
  modulePath?: string;
  /** Runs it with this limit on open files (`ulimit -n`, through /bin/sh, which execs node: the PID is the broker's). */
  openFileLimit?: number;
}

/** A broker process started by a test. */
export interface BrokerProcess {
  readonly nodeId: string;
  /** `host:port` the broker printed as its listening address. */
  readonly endpoint: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** SIGTERM (a clean stop: LEAVING), waits for the exit; SIGKILL after 5 s. */
  stop(): Promise<ExitInfo>;
  /** SIGKILL: a crash, nothing is said to the peers. */
  kill9(): Promise<ExitInfo>;
  /** Last ~200 lines of its stdout and stderr. */
  output(): string;
}

/** Starts `peerbroker start` from dist/ with the bank example and resolves once it listens. */
export async function startBrokerProcess(opts: BrokerProcessOptions): Promise<BrokerProcess> {
  const cli = opts.cliPath ?? CLI_PATH;
  const module = opts.modulePath ?? BANK_MODULE_PATH;
  if (!fs.existsSync(cli) || !fs.existsSync(module)) {
    throw new Error(`broker processes run from dist/: '${cli}' or '${module}' is missing; run 'npm run build' first`);
  }
  const host = opts.listenHost ?? '127.0.0.1';
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) {
    throw new Error(`test brokers listen on loopback only: host '${host}' is not 127.x.x.x`);
  }
  const args = [
    cli,
    'start',
    '--node-id', opts.nodeId,
    '--listen', `${host}:${opts.port ?? 0}`,
    '--nats', opts.nats.join(','),
    '--cluster', opts.cluster,
    '--module', module,
  ];
  if (opts.capacity !== undefined) args.push('--capacity', String(opts.capacity));
  if (opts.threshold !== undefined) args.push('--threshold', String(opts.threshold));
  if (opts.margin !== undefined) args.push('--margin', String(opts.margin));
  if (opts.periodMs !== undefined) args.push('--period-ms', String(opts.periodMs));
  if (opts.extraArgs) args.push(...opts.extraArgs);

  const env = { ...process.env, ...opts.env };
  const child =
    opts.openFileLimit === undefined
      ? spawnTracked(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
      : spawnTracked('/bin/sh', ['-c', `ulimit -n ${Math.floor(opts.openFileLimit)} && exec "$0" "$@"`, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let line: string;
  try {
    line = await waitForLine(child, LISTENING, opts.readyTimeoutMs ?? DEFAULT_BROKER_READY_TIMEOUT_MS);
  } catch (err) {
    await killTracked(child, 'SIGKILL');
    throw err;
  }
  const endpoint = LISTENING.exec(line)![2];
  return {
    nodeId: opts.nodeId,
    endpoint,
    pid: child.pid!,
    child,
    stop: () => killTracked(child, 'SIGTERM'),
    kill9: () => killTracked(child, 'SIGKILL'),
    output: () => outputOf(child),
  };
}

/**
 * Starts one broker process per id with the same options (plus `each[id]`), and resolves
 * once every one of them lists all of them ONLINE. A start that fails kills the others.
 */
export async function startBrokerProcesses(
  nodeIds: string[],
  common: Omit<BrokerProcessOptions, 'nodeId'>,
  each: Record<string, Partial<BrokerProcessOptions>> = {},
): Promise<BrokerProcess[]> {
  const results = await Promise.allSettled(nodeIds.map((nodeId) => startBrokerProcess({ ...common, ...each[nodeId], nodeId })));
  const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((b) => b.kill9()));
    throw failed.reason;
  }
  const all = Object.fromEntries(nodeIds.map((id) => [id, 'ONLINE']));
  for (const b of started) await waitForMembers(b.endpoint, all);
  return started;
}

// ---------------------------------------------------------------------------
// In-process brokers

const started = new Set<Broker>();

/** Options of `startBroker()`: broker options plus what to host. */
export type TestBrokerOptions = BrokerOptions & {
  /** Register the bank example (Banking, Securities). Default true, unless `host` is given. */
  register?: boolean;
  /** Simulated work per bank call, ms, for this broker only. Default: $BANK_WORK_MS, else 1. */
  workMs?: number;
  /**
   * Registers what the broker hosts (services, session listeners) instead of the bank
   * example; runs before `start()`.
   */
  host?: (broker: Broker) => void;
};

/**
 * Starts a Broker in this process, listening on 127.0.0.1 (port 0 unless `listen`
 * says otherwise), with the bank example registered, or what `host` registers.
 * `stopAllBrokers()` stops it.
 */
export async function startBroker(options: TestBrokerOptions): Promise<Broker> {
  const { register = options.host === undefined, workMs, host, ...brokerOptions } = options;
  const broker = new Broker({
    listen: '127.0.0.1:0',
    logger: createLogger({ level: process.env.PEERBROKER_LOG_LEVEL ?? 'error' }),
    ...brokerOptions,
  });
  if (register) addBank(broker, broker.nodeId, workMs);
  host?.(broker);
  started.add(broker);
  await broker.start();
  return broker;
}

/**
 * Starts one in-process broker per id with the same options (plus `each[id]`), and
 * resolves once every one of them sees all of them ONLINE (whatever other nodes it sees).
 */
export async function startBrokerGroup(
  nodeIds: string[],
  common: Omit<TestBrokerOptions, 'nodeId'>,
  each: Record<string, Partial<TestBrokerOptions>> = {},
): Promise<Broker[]> {
  const brokers = await Promise.all(nodeIds.map((nodeId) => startBroker({ ...common, ...each[nodeId], nodeId })));
  for (const b of brokers) {
    await waitFor(
      // Of the group only: other nodes of the cluster (a process started beside it) may come and go.
      () => b.members().filter((m) => m.status === 'ONLINE' && nodeIds.includes(m.nodeId)).length === nodeIds.length,
      15_000,
      20,
      `${b.nodeId} to see all of ${nodeIds.join(', ')} ONLINE`,
    );
  }
  return brokers;
}

/** Stops every broker `startBroker()` started that is still running. */
export async function stopAllBrokers(): Promise<void> {
  const all = [...started];
  started.clear();
  await Promise.all(all.map((b) => b.stop().catch(() => undefined)));
}

// ---------------------------------------------------------------------------
// Waiting

/**
 * Polls `fn` every `intervalMs` until it returns a truthy value (which is returned)
 * or `timeoutMs` passes; then throws, quoting `what` and the last value or error.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 10_000,
  intervalMs = 50,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${detail}`);
    }
    await sleep(intervalMs);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Clients

const openClients = new Set<grpc.Client>();
const adminClients = new Map<string, BrokerClient>();

/** A redirect-following stub of bank.Banking on `endpoints`; `closeAllClients()` closes it. */
export function bankClient(endpoints: string[], opts: Partial<ClientOptions> = {}) {
  const client = createClient(bankProto().bank.Banking, { endpoints, ...opts });
  openClients.add(client);
  return client;
}

/**
 * A plain grpc-js bank.Banking client: it does not follow (or announce following) redirects.
 * Plaintext unless `credentials` says otherwise.
 */
export function plainBankClient(
  endpoint: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options?: grpc.ChannelOptions,
): BankingClient {
  const Banking = bankProto().bank.Banking;
  const client = new Banking(endpoint, credentials, options);
  openClients.add(client);
  return client;
}

/** A redirect-following stub of bank.Securities on `endpoints`; `closeAllClients()` closes it. */
export function securitiesClient(endpoints: string[], opts: Partial<ClientOptions> = {}) {
  const client = createClient(bankProto().bank.Securities, { endpoints, ...opts });
  openClients.add(client);
  return client;
}

/** A plain grpc-js bank.Securities client: it does not follow (or announce following) redirects. */
export function plainSecuritiesClient(endpoint: string): SecuritiesClient {
  const Securities = bankProto().bank.Securities;
  const client = new Securities(endpoint, grpc.credentials.createInsecure());
  openClients.add(client);
  return client;
}

/** Resolves with the ServiceError a call failed with; rejects, naming who served it, when it succeeded. */
export function callError(call: Promise<unknown>): Promise<grpc.ServiceError> {
  return call.then(
    (r) => {
      const servedBy = (r as { servedBy?: unknown } | undefined)?.servedBy;
      throw new Error(`expected the call to fail, it succeeded${servedBy ? ` on ${JSON.stringify(servedBy)}` : ''}`);
    },
    (err: grpc.ServiceError) => err,
  );
}

/** A client of the broker's own service (`peerbroker.v1.Broker`: Members, Status), one per endpoint. */
export function brokerAdminClient(endpoint: string): BrokerClient {
  let client = adminClients.get(endpoint);
  if (!client) {
    client = new (brokerProto().peerbroker.v1.Broker)(endpoint, grpc.credentials.createInsecure());
    adminClients.set(endpoint, client);
  }
  return client;
}

/** Closes every client made by the helpers above. */
export function closeAllClients(): void {
  for (const c of openClients) c.close();
  openClients.clear();
  for (const c of adminClients.values()) c.close();
  adminClients.clear();
}

/** Stops in-process brokers and closes clients: for afterAll/afterEach. Kill processes with killAllTracked(). */
export async function cleanupBrokers(): Promise<void> {
  closeAllClients();
  await stopAllBrokers();
}

/** Metadata announcing that this client follows redirects (what the stub sends). */
export function followMetadata(hops?: number): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(MD_FOLLOW, '1');
  if (hops !== undefined) md.set(MD_HOPS, String(hops));
  return md;
}

/** Options of one call made by `unary()` or `serverStream()`. */
export interface CallOpts {
  /** Absolute deadline, as grpc-js takes it (Date or ms since the epoch). */
  deadline?: grpc.Deadline;
  /** Relative deadline, ms from now (ignored when `deadline` is given). */
  timeoutMs?: number;
  metadata?: grpc.Metadata;
  /** Per-call interceptors. */
  interceptors?: grpc.Interceptor[];
}

/** What a successful call returned. */
export interface UnaryResult<T> {
  value: T;
  /** Response headers. */
  metadata: grpc.Metadata;
  /** `served_by` of the response, else the `peerbroker-node` header. */
  servedBy: string | undefined;
}

function callOptions(opts: CallOpts): grpc.CallOptions {
  const deadline = opts.deadline ?? (opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : undefined);
  return { ...(deadline === undefined ? {} : { deadline }), ...(opts.interceptors ? { interceptors: opts.interceptors } : {}) };
}

function servedByOf(value: unknown, headers: grpc.Metadata): string | undefined {
  const fromBody = (value as { servedBy?: unknown } | undefined)?.servedBy;
  if (typeof fromBody === 'string' && fromBody) return fromBody;
  const fromHeader = headers.get(MD_NODE)[0];
  return typeof fromHeader === 'string' ? fromHeader : undefined;
}

type AnyMethod = (req: unknown, md: grpc.Metadata, options: grpc.CallOptions, cb: grpc.requestCallback<unknown>) => grpc.ClientUnaryCall;

/** Calls unary `method` (e.g. `'GetBalance'`); rejects with the grpc ServiceError. */
export function unary<T = Record<string, unknown>>(client: grpc.Client, method: string, req: object, opts: CallOpts = {}): Promise<UnaryResult<T>> {
  const fn = (client as unknown as Record<string, AnyMethod>)[method];
  if (typeof fn !== 'function') throw new Error(`client has no method '${method}'`);
  return new Promise((resolve, reject) => {
    let headers = new grpc.Metadata();
    const call = fn.call(client, req, opts.metadata ?? new grpc.Metadata(), callOptions(opts), (err, value) => {
      if (err) reject(err);
      else resolve({ value: value as T, metadata: headers, servedBy: servedByOf(value, headers) });
    });
    call.on('metadata', (m: grpc.Metadata) => (headers = m));
  });
}

/** What a completed server-streaming call returned. */
export interface StreamResult<T> {
  messages: T[];
  metadata: grpc.Metadata;
  /** The distinct `served_by` values of the messages. */
  servedBy: string[];
}

/** Calls server-streaming `method` and collects every message; rejects with the ServiceError. */
export function serverStream<T = Record<string, unknown>>(
  client: grpc.Client,
  method: string,
  req: object,
  opts: CallOpts = {},
): Promise<StreamResult<T>> {
  const fn = (client as unknown as Record<string, (r: unknown, md: grpc.Metadata, o: grpc.CallOptions) => grpc.ClientReadableStream<T>>)[method];
  if (typeof fn !== 'function') throw new Error(`client has no method '${method}'`);
  return new Promise((resolve, reject) => {
    const messages: T[] = [];
    let headers = new grpc.Metadata();
    const call = fn.call(client, req, opts.metadata ?? new grpc.Metadata(), callOptions(opts));
    call.on('metadata', (m: grpc.Metadata) => (headers = m));
    call.on('data', (m: T) => messages.push(m));
    call.on('error', reject);
    call.on('end', () => {
      const servedBy = [...new Set(messages.map((m) => (m as { servedBy?: string }).servedBy ?? ''))];
      resolve({ messages, metadata: headers, servedBy });
    });
  });
}

/** Calls the broker's `Members` on `endpoint`. */
export function members(endpoint: string, timeoutMs = 3_000): Promise<MemberInfo[]> {
  return new Promise((resolve, reject) =>
    brokerAdminClient(endpoint).Members({}, { deadline: Date.now() + timeoutMs }, (err, res) =>
      err || !res ? reject(err ?? new Error('empty Members answer')) : resolve(res.members),
    ),
  );
}

/** Calls the broker's `Status` on `endpoint`. */
export function brokerStatus(endpoint: string, timeoutMs = 3_000): Promise<StatusResponse__Output> {
  return new Promise((resolve, reject) =>
    brokerAdminClient(endpoint).Status({}, { deadline: Date.now() + timeoutMs }, (err, res) =>
      err || !res ? reject(err ?? new Error('empty Status answer')) : resolve(res),
    ),
  );
}

/** `{ nodeId: status }` of a member list. */
export function statusMap(list: readonly MemberInfo[]): Record<string, string> {
  return Object.fromEntries(list.map((m) => [m.nodeId, m.status]));
}

/**
 * Waits until the node at `endpoint` lists exactly `expected` (node id → status), itself included.
 * Returns the member list.
 */
export function waitForMembers(endpoint: string, expected: Record<string, string>, timeoutMs = 15_000): Promise<MemberInfo[]> {
  const want = JSON.stringify(sortKeys(expected));
  return waitFor(
    async () => {
      const list = await members(endpoint);
      return JSON.stringify(sortKeys(statusMap(list))) === want ? list : undefined;
    },
    timeoutMs,
    50,
    `${endpoint} to list ${want}`,
  );
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

/** Long server-streaming calls from a plain client, each holding one slot of a broker. */
export interface SlotHold {
  /** Cancels every held call; the broker frees the slots. */
  release(): void;
}

/**
 * Opens `n` plain (non-following) `StreamStatements` calls of `count` messages on
 * `endpoint`: each keeps one slot busy for about `count` × the broker's work time,
 * and is never redirected. Release them with `release()`. With `metadata` (e.g.
 * `followMetadata(maxHops)`, a call at the hop limit) they also stay put on a node
 * that forwards plain calls (`forwardLegacy`). `credentials` (e.g. TLS) default to plaintext.
 */
export function holdSlots(
  endpoint: string,
  n: number,
  count = 10_000,
  metadata?: grpc.Metadata,
  credentials?: grpc.ChannelCredentials,
): SlotHold {
  const client = plainBankClient(endpoint, credentials);
  const calls: grpc.ClientReadableStream<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const call = client.StreamStatements({ accountId: `hold-${i}`, count }, metadata ?? new grpc.Metadata());
    call.on('data', () => {});
    call.on('error', () => {}); // CANCELLED on release
    calls.push(call);
  }
  return {
    release() {
      for (const c of calls) c.cancel();
      client.close();
      openClients.delete(client);
    },
  };
}

/**
 * Makes in-process broker `busy` busy: `n` of its slots held by plain calls (as `holdSlots()`,
 * with its `metadata` and `credentials`), and waits until `idle` sees it at that load and it
 * sees `idle` at load 0. Release the slots with the returned hold.
 */
export async function makeBusy(
  busy: Broker,
  idle: Broker,
  n: number,
  opts: { count?: number; metadata?: grpc.Metadata; credentials?: grpc.ChannelCredentials } = {},
): Promise<SlotHold> {
  const capacity = busy.members().find((m) => m.nodeId === busy.nodeId)!.capacity;
  const hold = holdSlots(busy.endpoint, n, opts.count, opts.metadata, opts.credentials);
  try {
    await waitForLoad(idle, busy, n / capacity);
    await waitForLoad(busy, idle, 0);
  } catch (err) {
    hold.release();
    throw err;
  }
  return hold;
}

export { fakeReport } from './reports';

/**
 * Waits until in-process broker `node` is at `load` and `observer` (another in-process
 * broker) has a report from it saying ONLINE at that load.
 */
export async function waitForLoad(observer: Broker, node: Broker, load: number, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => node.load() === load, timeoutMs, 20, `${node.nodeId} at load ${load}`);
  if (observer === node) return;
  await waitFor(
    () => observer.members().find((m) => m.nodeId === node.nodeId && m.status === 'ONLINE' && m.load === load),
    timeoutMs,
    20,
    `${observer.nodeId} to see ${node.nodeId} ONLINE at load ${load}`,
  );
}
