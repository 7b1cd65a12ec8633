import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { killTracked, onProcessCleanup, spawnTracked, waitForLine } from './processes';

/** Flags that work for headless Chromium on this machine (no sandbox, no network of its own). */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Debian's Chromium (`scripts/ensure-chromium.sh` installs it), or $PEERBROKER_CHROMIUM. */
export function chromiumPath(): string {
  for (const p of [process.env.PEERBROKER_CHROMIUM, '/usr/bin/chromium']) if (p && fs.existsSync(p)) return p;
  throw new Error("chromium not found: run 'bash scripts/ensure-chromium.sh' (npm test does), or set PEERBROKER_CHROMIUM");
}

/** A headless Chromium started by a test, driven over CDP by playwright-core. */
export interface TestBrowser {
  browser: Browser;
  /** A new page (tab). */
  page(): Promise<Page>;
  /** Closes the connection and kills the browser's process group by its PID; removes its profile. */
  stop(): Promise<void>;
}

/**
 * Starts Chromium as a tracked process group (killed by PID, also when the test fails) with a
 * new empty profile and DevTools on a loopback port, and connects playwright-core to it.
 * Nothing is downloaded: the browser is the system's.
 */
export async function startBrowser(): Promise<TestBrowser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'peerbroker-chromium-'));
  // Chromium's helper processes may still be writing as the browser exits: retry, never throw.
  const removeProfile = () => {
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch {
      // Left in the temporary folder; nothing depends on it.
    }
  };
  onProcessCleanup(removeProfile);
  // Detached: Chromium and the renderers and helpers it starts are a process group of their
  // own, which is killed whole (a renderer can outlive the browser's own SIGKILL).
  const child = spawnTracked(
    chromiumPath(),
    [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', 'about:blank'],
    { detached: true },
  );
  let browser: Browser;
  try {
    const line = await waitForLine(child, /DevTools listening on (ws:\/\/\S+)/, 20_000);
    browser = await chromium.connectOverCDP(/(ws:\/\/\S+)/.exec(line)![1]);
  } catch (err) {
    await killTracked(child, 'SIGKILL');
    removeProfile();
    throw err;
  }
  return {
    browser,
    page: () => browser.contexts()[0].newPage(),
    async stop() {
      await browser.close().catch(() => undefined);
      await killTracked(child, 'SIGTERM', 3_000);
      removeProfile();
    },
  };
}

/**
 * A folder for a test's files (screenshots), removed when the test process ends unless
 * $PEERBROKER_KEEP_SCREENSHOTS is set (then its path is printed, to look at the PNGs).
 */
export function testFolder(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `peerbroker-${name}-`));
  if (process.env.PEERBROKER_KEEP_SCREENSHOTS) process.stdout.write(`screenshots of '${name}' in ${dir}\n`);
  else onProcessCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
