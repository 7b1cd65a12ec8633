import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/brokers';
import { freePort } from '../helpers/ports';
import { exitOf, killTracked, outputOf, spawnTracked, waitForLine } from '../helpers/processes';
import { natsForSuite } from '../helpers/suite';

const DIST = path.join(__dirname, '..', '..', 'dist', 'src', 'index.js');
const PERIOD_MS = 200;

/** A node started as a library by a small program: `new Broker({...})`, start, print a line. */
function libraryNode(natsUrl: string, extra: string) {
  const program = `
    const { Broker } = require(${JSON.stringify(DIST)});
    const broker = new Broker({ nodeId: 'lib1', nats: ${JSON.stringify(natsUrl)}, cluster: 'lifecycle', periodMs: ${PERIOD_MS} ${extra} });
    broker.start().then(() => console.log('ready on ' + broker.endpoint));`;
  return spawnTracked(process.execPath, ['-e', program]);
}

describe('broker lifecycle', () => {
  const nats = natsForSuite();

  it('fails within a couple of periods when its listen address is taken and no peer advertises it', async () => {
    const port = await freePort();
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen({ host: '127.0.0.1', port, exclusive: true }, resolve));
    try {
      const startedAt = Date.now();
      const r = await runCli(['start', '--node-id', 'n1', '--listen', `127.0.0.1:${port}`, '--nats', nats().url, '--cluster', 'lifecycle', '--period-ms', String(PERIOD_MS)]);
      const tookMs = Date.now() - startedAt;
      expect(r.code, r.output).toBe(1);
      expect(r.output).toContain(`cannot listen on '127.0.0.1:${port}'`);
      expect(r.output).toContain('no peer advertises it');
      // Start-up (node, NATS, module) plus about two periods; far below the 30 s an adopter gets.
      expect(tookMs, r.output).toBeLessThan(8_000);
    } finally {
      holder.close();
    }
  });

  it('drains and exits on SIGTERM in library mode with handleSignals: true', async () => {
    const child = libraryNode(nats().url, ', handleSignals: true');
    try {
      await waitForLine(child, /^ready on /);
      const exit = await killTracked(child, 'SIGTERM');
      expect(exit, outputOf(child)).toEqual({ code: 0, signal: null });
      expect(outputOf(child)).toMatch(/"msg":"draining"/);
      expect(outputOf(child)).toMatch(/"msg":"broker stopped"/);
    } finally {
      await killTracked(child, 'SIGKILL');
    }
  });

  it('leaves SIGTERM to the application in library mode by default', async () => {
    const child = libraryNode(nats().url, '');
    try {
      await waitForLine(child, /^ready on /);
      const exit = await killTracked(child, 'SIGTERM');
      // Node's own default: killed by the signal, nothing drained.
      expect(exit, outputOf(child)).toEqual({ code: null, signal: 'SIGTERM' });
      expect(outputOf(child)).not.toMatch(/"msg":"draining"/);
    } finally {
      await killTracked(child, 'SIGKILL');
      await exitOf(child);
    }
  });
});
