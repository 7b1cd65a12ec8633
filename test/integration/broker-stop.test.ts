import { describe, expect, it } from 'vitest';
import { BANK_MODULE_PATH, CLI_PATH } from '../helpers/brokers';
import { exitOf, killTracked, outputOf, spawnTracked, waitForLine } from '../helpers/processes';
import { natsForSuite } from '../helpers/suite';

// A stopped broker leaves no handle open: a process that started one, used it (local,
// forwarded, streamed and cancelled calls, a stub with a session) and stopped it exits
// by itself, without process.exit().
const LIB = CLI_PATH.replace(/cli[/\\]main\.js$/, 'index.js');

const script = (natsUrl: string) => `
const grpc = require('@grpc/grpc-js');
const { Broker, createClient } = require(${JSON.stringify(LIB)});
const { addBank, bankProto } = require(${JSON.stringify(BANK_MODULE_PATH)});
const { createLogger } = require(${JSON.stringify(LIB.replace(/index\.js$/, 'log.js'))});
const call = (client, method, req, md = new grpc.Metadata()) =>
  new Promise((resolve) => client[method](req, md, { deadline: Date.now() + 5000 }, (err, v) => resolve(err ? err.code : v)));
(async () => {
  const logger = createLogger({ level: 'error' });
  const common = { nats: [${JSON.stringify(natsUrl)}], cluster: 'stop-' + process.pid, periodMs: 200, capacity: 2, logger };
  const n1 = new Broker({ ...common, nodeId: 'n1', forwardLegacy: true, threshold: 0, margin: 0 });
  const n2 = new Broker({ ...common, nodeId: 'n2', threshold: 1 });
  addBank(n1, 'n1', 200);
  addBank(n2, 'n2', 1);
  await n1.start();
  await n2.start();
  while (n1.members().filter((m) => m.status === 'ONLINE').length < 2) await new Promise((r) => setTimeout(r, 20));
  const Banking = bankProto().bank.Banking;
  const plain = new Banking(n1.endpoint, grpc.credentials.createInsecure());
  // Forwarded: n1 is over its threshold (0) at once, n2 idle (once n1 has a fresh report of it).
  let forwarded;
  for (let i = 0; i < 50 && (forwarded === undefined || forwarded.servedBy !== 'n2'); i++) {
    forwarded = await call(plain, 'GetBalance', { accountId: 'a' });
    if (forwarded.servedBy !== 'n2') await new Promise((r) => setTimeout(r, 50));
  }
  console.log('forwarded', JSON.stringify(forwarded));
  // A call cancelled while its handler runs: its slot waits for the handler.
  const c = plain.GetBalance({ accountId: 'b' }, () => {});
  setTimeout(() => c.cancel(), 20);
  const stream = plain.StreamStatements({ accountId: 'c', count: 3 });
  stream.on('data', () => {});
  await new Promise((r) => stream.on('end', r));
  const stub = createClient(Banking, { endpoints: [n2.endpoint] });
  console.log('session', typeof (await call(stub, 'BeginTransaction', { accountId: 'd' })));
  await new Promise((r) => setTimeout(r, 300));
  plain.close();
  stub.close();
  await n1.stop();
  await n2.stop();
  console.log('stopped');
  // Diagnostics only, when the process is still up a while later (unref'd: it must not keep it up).
  setTimeout(() => console.log('still open: ' + JSON.stringify(process.getActiveResourcesInfo())), 3000).unref();
})().catch((err) => {
  console.log('failed: ' + (err && err.stack));
  process.exitCode = 1;
});
`;

// A start that fails after the gRPC server was bound (the reporter thread cannot reach NATS:
// nothing listens at the URL) leaves nothing behind either: start() rejects, the ports it had
// bound are free again, and the process exits by itself.
const failedStartScript = () => `
const net = require('net');
const { Broker } = require(${JSON.stringify(LIB)});
const { addBank } = require(${JSON.stringify(BANK_MODULE_PATH)});
const { createLogger } = require(${JSON.stringify(LIB.replace(/index\.js$/, 'log.js'))});
const freePort = () => new Promise((resolve) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });
const refused = (host, port) => new Promise((resolve) => {
  const s = net.connect(port, host);
  s.on('connect', () => { s.destroy(); resolve(false); });
  s.on('error', (e) => resolve(e.code === 'ECONNREFUSED'));
});
(async () => {
  const nobody = await freePort();
  const b = new Broker({ nodeId: 'n1', cluster: 'failed-start-' + process.pid, nats: ['nats://127.0.0.1:' + nobody], httpListen: '127.0.0.1:0', logger: createLogger({ level: 'silent' }) });
  addBank(b, 'n1', 1);
  try {
    await b.start();
    console.log('started');
  } catch (err) {
    console.log('start failed: ' + err.message);
  }
  const grpcPort = Number(b.endpoint.split(':')[1]);
  const httpPort = Number(new URL(b.httpUrl).port);
  console.log('grpc port closed: ' + (await refused('127.0.0.1', grpcPort)));
  console.log('http port closed: ' + (await refused('127.0.0.1', httpPort)));
  console.log('checked');
  setTimeout(() => console.log('still open: ' + JSON.stringify(process.getActiveResourcesInfo())), 3000).unref();
})().catch((err) => {
  console.log('failed: ' + (err && err.stack));
  process.exitCode = 1;
});
`;

// stop() called while start() still runs (an application that does not await start(), or a
// fatal error during it): start() rejects, and nothing it would have started runs.
const overtakenStartScript = (natsUrl: string, whenBound = false) => `
const { Broker } = require(${JSON.stringify(LIB)});
const { addBank } = require(${JSON.stringify(BANK_MODULE_PATH)});
const { createLogger } = require(${JSON.stringify(LIB.replace(/index\.js$/, 'log.js'))});
(async () => {
  const b = new Broker({ nodeId: 'n1', cluster: 'overtaken-' + process.pid, nats: [${JSON.stringify(natsUrl)}], periodMs: 200, httpListen: '127.0.0.1:0', logger: createLogger({ level: 'silent' }) });
  addBank(b, 'n1', 1);
  const started = b.start().then(() => 'started', (err) => 'start failed: ' + err.message);
  // At once (start() waits to bind), or once bound (start() waits for the reporter thread and NATS).
  const bound = () => { try { return Boolean(b.endpoint); } catch { return false; } };
  if (${whenBound}) while (!bound()) await new Promise((r) => setImmediate(r));
  await b.stop();
  console.log(await started);
  console.log('stopped');
  setTimeout(() => console.log('still open: ' + JSON.stringify(process.getActiveResourcesInfo())), 3000).unref();
})().catch((err) => {
  console.log('failed: ' + (err && err.stack));
  process.exitCode = 1;
});
`;

/**
 * Runs `source` in a Node process of its own until it prints `done`, then waits for the process
 * to exit by itself; resolves with its output. Anything still referenced keeps it up: a
 * generous bound, this asserts that it exits, not how fast.
 */
async function exitsByItself(source: string, done: RegExp): Promise<{ code: number | null; output: string }> {
  const child = spawnTracked(process.execPath, ['-e', source], { cwd: LIB.replace(/dist[/\\]src[/\\]index\.js$/, '') });
  try {
    await waitForLine(child, done, 30_000);
    const exited = await Promise.race([exitOf(child), new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
    expect(exited, `still running:\n${outputOf(child)}`).not.toBeNull();
    return { code: exited!.code, output: outputOf(child) };
  } finally {
    await killTracked(child, 'SIGKILL');
  }
}

describe('a stopped broker', () => {
  const nats = natsForSuite();

  it('leaves no handle open: the process that ran two of them exits by itself after stop()', async () => {
    const { code, output } = await exitsByItself(script(nats().url), /^stopped$/);
    expect(code).toBe(0);
    expect(output).toMatch(/^forwarded \{.*"servedBy":"n2"/m);
    expect(output).toMatch(/^session object$/m);
  });

  it('starts nothing more when stop() comes while start() runs: start() rejects, and the process exits by itself', async () => {
    const { output } = await exitsByItself(overtakenStartScript(nats().url), /^stopped$/);
    expect(output).toMatch(/^start failed: broker 'n1' was stopped while it started$/m);
    // Later in start(), while the reporter thread connects to NATS.
    const bound = await exitsByItself(overtakenStartScript(nats().url, true), /^stopped$/);
    expect(bound.output).toMatch(/^start failed: .*stopped while it started$/m);
  });

  it('leaves nothing open when start() fails after binding: ports free again, and the process exits by itself', async () => {
    const { output } = await exitsByItself(failedStartScript(), /^checked$/);
    expect(output).toMatch(/^start failed: control plane: /m);
    expect(output).toMatch(/^grpc port closed: true$/m);
    expect(output).toMatch(/^http port closed: true$/m);
  });
});
