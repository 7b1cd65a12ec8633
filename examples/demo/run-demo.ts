/**
 * The peerbroker demo (`npm run demo`): three brokers, one client that sends every
 * call to node 1, first without balancing, then with the peerbroker stub.
 *
 * Brokers run as processes over a real nats-server when one is available
 * (PEERBROKER_NATS_SERVER, set by scripts/demo.sh); otherwise, or with
 * PEERBROKER_DEMO_IN_PROCESS=1, they run in this process over an in-process
 * exchange. The demo ends by itself and stops everything it started, by PID.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createClient } from '../../src';
import { bankProto } from '../bank';
import { startInProcessCluster, startProcessCluster, type DemoBrokerSettings, type DemoCluster } from './cluster';
import { LiveView } from './live-view';
import { runLoad, type LoadOptions, type LoadProgress } from './load';
import { runningPids, startedPids, stopAll } from './processes';
import { formatPhase, formatRatio, type PhaseReport } from './summary';

const SETTINGS: DemoBrokerSettings = { nodeIds: ['n1', 'n2', 'n3'], cluster: 'demo', capacity: 8, periodMs: 250, workMs: 20 };

/** Every 10th call is a stream of 3 messages, so a call holds a slot 24 ms on average. */
const STREAM_EVERY = 10;
const STREAM_MESSAGES = 3;
const MEAN_SLOT_MS = SETTINGS.workMs * ((STREAM_EVERY - 1 + STREAM_MESSAGES) / STREAM_EVERY);

/** 600 calls/s x 24 ms = 14.4 busy slots: 1.8x what one node has (8), 60 % of three nodes. */
const RATE_PER_SEC = 600;
const PHASE1_MS = 10_000;
const PHASE2_MS = 15_000;
/** Between the phases: peers' reports show node 1 idle again before the stub starts. */
const PAUSE_MS = 1_000;
const CALL_DEADLINE_MS = 2_000;
const MAX_IN_FLIGHT = 500;
/** The demo stops itself (and everything it started) if it runs longer than this. */
const TIME_BOUND_MS = 52_000;

const ENSURE_NATS = path.resolve(__dirname, '..', '..', '..', 'scripts', 'ensure-nats.sh');

let cluster: DemoCluster | undefined;
let view: LiveView | undefined;
const clients: grpc.Client[] = [];
let shuttingDown = false;
/** Aborted on shutdown, so the load generator stops before its clients are closed. */
const stopLoad = new AbortController();
const t0 = performance.now();

const say = (line = '') => process.stdout.write(line + '\n');

/** Where nats-server is, or why the demo cannot use one. */
function findNats(): { binary: string } | { reason: string } {
  if (process.env.PEERBROKER_DEMO_IN_PROCESS === '1') return { reason: 'PEERBROKER_DEMO_IN_PROCESS=1 asks for the in-process mode' };
  const given = process.env.PEERBROKER_NATS_SERVER;
  if (given) return isExecutable(given) ? { binary: given } : { reason: `PEERBROKER_NATS_SERVER='${given}' is not an executable file` };
  if (process.env.PEERBROKER_NATS_UNAVAILABLE) return { reason: process.env.PEERBROKER_NATS_UNAVAILABLE };
  // Started directly, not through scripts/demo.sh: look for it the same way.
  try {
    const found = execFileSync('bash', [ENSURE_NATS], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    return isExecutable(found) ? { binary: found } : { reason: `scripts/ensure-nats.sh printed '${found}', which is not executable` };
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim().split('\n').pop() || (err as Error).message;
    const root = process.getuid?.() === 0;
    return { reason: root ? stderr : `not running as root, so it could not be installed with apt-get (${stderr})` };
  }
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function loadOptions(durationMs: number): LoadOptions {
  return {
    ratePerSec: RATE_PER_SEC,
    durationMs,
    streamEvery: STREAM_EVERY,
    streamMessages: STREAM_MESSAGES,
    deadlineMs: CALL_DEADLINE_MS,
    maxInFlight: MAX_IN_FLIGHT,
  };
}

const newProgress = (): LoadProgress => ({ sent: 0, ok: 0, failed: 0, inFlight: 0, startedAt: performance.now() });

async function main(): Promise<void> {
  const s = SETTINGS;
  const perNode = Math.round((s.capacity * 1000) / s.workMs);
  say('peerbroker demo');
  say(`  brokers   ${s.nodeIds.join(', ')}: capacity ${s.capacity} concurrent calls, ${s.workMs} ms of work per call (${perNode} calls/s each), load reports every ${s.periodMs} ms`);
  say(
    `  load      ${RATE_PER_SEC} calls/s for ${PHASE1_MS / 1000} s, then ${PHASE2_MS / 1000} s; every call goes to ${s.nodeIds[0]} (clients holding one cached DNS entry);`,
  );
  say(
    `            GetBalance/Deposit, every ${STREAM_EVERY}th a StreamStatements of ${STREAM_MESSAGES}: ` +
      `${((RATE_PER_SEC * MEAN_SLOT_MS) / 1000).toFixed(1)} busy slots = ` +
      `${((RATE_PER_SEC * MEAN_SLOT_MS) / 1000 / s.capacity).toFixed(1)}x one node`,
  );

  const nats = findNats();
  if ('binary' in nats) {
    say(`  control   nats-server ${nats.binary}`);
    cluster = await startProcessCluster(nats.binary, s);
  } else {
    say(`  control   nats-server is not available: ${nats.reason}.`);
    say('            Running the three brokers IN ONE PROCESS over an in-process exchange instead (not NATS).');
    cluster = await startInProcessCluster(s);
  }
  say(`  cluster   ${cluster.description}`);
  say(`            ${cluster.nodes.map((n) => `${n.nodeId} ${n.endpoint}`).join(', ')}`);
  const header = `peerbroker demo: ${cluster.description}`;

  // A broker process that dies mid-run ends the demo with its output.
  const watchdog = setInterval(() => {
    const failure = cluster?.failure();
    if (failure) void shutdown(1, failure);
  }, 200);
  watchdog.unref();

  const Banking = bankProto().bank.Banking;
  const first = cluster.nodes[0];
  view = new LiveView(cluster.nodes, header);

  // Phase 1: a plain grpc-js client never announces peerbroker-follow, so it is never redirected.
  const plain = new Banking(first.endpoint, grpc.credentials.createInsecure());
  clients.push(plain);
  const phase1Title = `phase 1/2  without balancing: plain grpc-js client, every call to ${first.nodeId}`;
  say();
  const p1 = newProgress();
  await view.begin(phase1Title, p1);
  const r1 = await runLoad(plain, loadOptions(PHASE1_MS), p1, stopLoad.signal);
  await view.end();
  plain.close();

  await new Promise((r) => setTimeout(r, PAUSE_MS));

  // Phase 2: the same load through the stub, which follows the brokers' redirects.
  const stub = createClient(Banking, { endpoints: [first.endpoint] });
  clients.push(stub);
  const phase2Title = `phase 2/2  with peerbroker: createClient stub, every call to ${first.nodeId}, redirects followed`;
  say();
  const p2 = newProgress();
  await view.begin(phase2Title, p2);
  const before = stub.peerbroker.stats.redirectsFollowed;
  const r2 = await runLoad(stub, loadOptions(PHASE2_MS), p2, stopLoad.signal);
  const followed = stub.peerbroker.stats.redirectsFollowed - before;
  await view.end();
  stub.close();
  view.close();

  const reports: PhaseReport[] = [
    { title: phase1Title, result: r1, redirectsFollowed: 0, streamMessages: STREAM_MESSAGES },
    { title: phase2Title, result: r2, redirectsFollowed: followed, streamMessages: STREAM_MESSAGES },
  ];
  say();
  say(`== summary: ${cluster.mode === 'nats' ? 'brokers over NATS' : 'brokers in one process, in-process exchange (not NATS)'} ==`);
  for (const r of reports) {
    for (const line of formatPhase(r, s.nodeIds)) say(line);
    say();
  }
  say(formatRatio(r1, r2));
  await shutdown(0);
}

/** Stops every broker and process this demo started (by PID), reports it, and exits with `code`. */
async function shutdown(code: number, why?: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  if (why) process.stderr.write(`\npeerbroker demo: ${why}\n`);
  stopLoad.abort();
  view?.close();
  for (const c of clients) c.close();
  await cluster?.stop().catch((err: Error) => process.stderr.write(`peerbroker demo: stopping the brokers failed: ${err.message}\n`));
  await stopAll(); // anything started but not yet handed to the cluster (a failed start)
  const left = runningPids();
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  const procs = startedPids.length > 0 ? `stopped ${startedPids.length} process${startedPids.length === 1 ? "" : "es"} it started (pids ${startedPids.join(', ')})` : 'started no processes';
  const brokers = cluster?.mode === 'in-process' ? 'stopped the in-process brokers; ' : '';
  say(`demo ${code === 0 ? 'finished' : 'ended'} in ${secs} s; ${brokers}${procs}; ${left.length === 0 ? 'none left running' : `STILL RUNNING: ${left.join(', ')}`}`);
  process.exit(left.length > 0 && code === 0 ? 1 : code);
}

process.once('SIGINT', () => void shutdown(130, 'interrupted (SIGINT)'));
process.once('SIGTERM', () => void shutdown(143, 'terminated (SIGTERM)'));
setTimeout(() => void shutdown(1, `the demo ran longer than its ${TIME_BOUND_MS / 1000} s bound`), TIME_BOUND_MS).unref();

main().catch((err: unknown) => void shutdown(1, err instanceof Error ? err.message : String(err)));
