import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, codeBlocks, compile, packedFiles, writeReadmeApp } from './readme-app';

// Offline: the package is staged from the files `npm pack` would ship (dist/ is built by
// `npm test`), its dependencies and peers linked from this repository's node_modules.
// test:package does the same against a real tarball installed from the registry.
const TYPING_PROMISES = `
import { Broker, createClient } from 'peerbroker';
import type { ProtoGrpcType } from './gen/accounts.js';
import type { AccountsClient, AccountsDefinition, AccountsHandlers } from './gen/accounts/Accounts.js';
declare const definition: AccountsDefinition;
declare const pkg: ProtoGrpcType;
// A session's client is of the same type as the client it came from.
const client = createClient(pkg.accounts.Accounts, { endpoints: ['127.0.0.1:7001'] });
const session: AccountsClient = client.peerbroker.withSession().peerbroker.withSession();
session.GetBalance({ accountId: 'a1' }, (err, balance) => balance?.balanceCents);
const broker = new Broker({ nodeId: 'n1' });
// @ts-expect-error a missing handler does not compile
broker.addService<AccountsHandlers>(definition, {});
broker.addService<AccountsHandlers>(definition, {
  // @ts-expect-error nor does a mistyped one
  GetBalance: (call, callback) => callback(null, { balanceCents: call.request.nope }),
});
`;

describe("README's TypeScript", () => {
  let appDir: string;
  let sources: string[];

  beforeAll(() => {
    appDir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerbroker-readme-'));
    const modules = path.join(appDir, 'node_modules');
    const pkgDir = path.join(modules, 'peerbroker');
    for (const file of packedFiles()) {
      fs.mkdirSync(path.dirname(path.join(pkgDir, file)), { recursive: true });
      fs.copyFileSync(path.join(REPO_ROOT, file), path.join(pkgDir, file));
    }
    for (const entry of fs.readdirSync(path.join(REPO_ROOT, 'node_modules'))) {
      if (entry.startsWith('.') || entry === 'peerbroker') continue;
      fs.symlinkSync(path.join(REPO_ROOT, 'node_modules', entry), path.join(modules, entry));
    }
    sources = writeReadmeApp(appDir);
    // What the typing promises beyond the README: tsc fails on an unused @ts-expect-error.
    fs.writeFileSync(path.join(appDir, 'src', 'promises.ts'), TYPING_PROMISES);
  });

  afterAll(() => {
    if (appDir) fs.rmSync(appDir, { recursive: true, force: true });
  });

  it('has TypeScript blocks, each a complete module', () => {
    const blocks = codeBlocks(fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8')).filter((b) => b.lang === 'ts');
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    for (const b of blocks) expect(b.text, `README.md:${b.line}`).toMatch(/^import /m);
    expect(sources).toHaveLength(blocks.length);
  });

  it('compiles under strict against the packed package and types made by peerbroker gen-types; a missing handler does not, and withSession() keeps the client type', () => {
    const { code, output } = compile(appDir);
    expect(output).toBe('');
    expect(code).toBe(0);
    // tsc checks every package's declarations (skipLibCheck off): on this shared 2-core machine that can take minutes.
  }, 180_000);
});
