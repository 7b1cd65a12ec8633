import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrokerProcess } from '../helpers/brokers';
import { exitOf, outputOf, spawnTracked, waitForLine } from '../helpers/processes';
import { natsForSuite } from '../helpers/suite';
import { REPO_ROOT, compile, writeReadmeApp } from './readme-app';

// `npm run test:package`: needs the npm registry, so not part of `npm test`. Packs this
// repository (prepack builds it), installs the tarball into a new app under the OS temp
// folder beside the lowest grpc-js and proto-loader of the peer ranges, and runs the app's
// own typed service on two nodes started with the installed CLI.
const RUN = process.env.PEERBROKER_PACKAGE_TEST === '1';

const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  version: string;
  peerDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
/** The lowest version a range such as `^0.7.13 || ^0.8.0` allows: the one an app is most likely to differ by. */
const lowest = (range: string) => /\d+\.\d+\.\d+/.exec(range)![0];
const GRPC_JS = lowest(manifest.peerDependencies['@grpc/grpc-js']);
const PROTO_LOADER = lowest(manifest.peerDependencies['@grpc/proto-loader']);

/** Every copy of `@grpc/grpc-js` under `dir`, as `path@version`. */
function grpcJsCopies(dir: string): string[] {
  const found: string[] = [];
  const walk = (modules: string) => {
    if (!fs.existsSync(modules)) return;
    for (const entry of fs.readdirSync(modules)) {
      const scoped = entry.startsWith('@') ? fs.readdirSync(path.join(modules, entry)).map((e) => path.join(entry, e)) : [entry];
      for (const name of scoped) {
        const pkgDir = path.join(modules, name);
        if (name === path.join('@grpc', 'grpc-js')) {
          found.push(`${path.relative(dir, pkgDir)}@${JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version}`);
        }
        walk(path.join(pkgDir, 'node_modules'));
      }
    }
  };
  walk(path.join(dir, 'node_modules'));
  return found;
}

describe.skipIf(!RUN)(`the packed tarball, in an app on @grpc/grpc-js ${GRPC_JS} and @grpc/proto-loader ${PROTO_LOADER}`, () => {
  const nats = natsForSuite();
  let work: string;
  let appDir: string;
  const run = (args: string[], cwd = appDir) => execFileSync(args[0], args.slice(1), { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const cli = () => path.join(appDir, 'node_modules', '.bin', 'peerbroker');

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'peerbroker-package-'));
    // prepack builds; its output precedes the JSON on stdout.
    const packed = run(['npm', 'pack', '--json', '--pack-destination', work], REPO_ROOT);
    const info = (JSON.parse(packed.slice(packed.indexOf('\n[') + 1)) as { filename: string; entryCount: number; size: number; unpackedSize: number }[])[0];
    console.log(`tarball ${info.filename}: ${info.entryCount} files, ${info.size} bytes packed, ${info.unpackedSize} unpacked`);
    appDir = path.join(work, 'app');
    fs.cpSync(path.join(__dirname, 'app'), appDir, { recursive: true });
    fs.writeFileSync(path.join(appDir, 'package.json'), JSON.stringify({ name: 'peerbroker-app', private: true, type: 'module' }, null, 2));
    run([
      'npm', 'install', '--no-audit', '--no-fund', '--loglevel=error',
      path.join(work, info.filename),
      `@grpc/grpc-js@${GRPC_JS}`,
      `@grpc/proto-loader@${PROTO_LOADER}`,
      `typescript@${manifest.devDependencies.typescript}`,
      `@types/node@${manifest.devDependencies['@types/node']}`,
    ]);
  }, 600_000);

  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('installs one copy of grpc-js: the application’s', () => {
    expect(grpcJsCopies(appDir)).toEqual([`node_modules/@grpc/grpc-js@${GRPC_JS}`]);
  });

  it('runs its CLI from the bin', () => {
    expect(run([process.execPath, cli(), '--version']).trim()).toBe(manifest.version);
  });

  it("generates types for the app's .proto with peerbroker gen-types, and the app compiles under strict", () => {
    run([process.execPath, cli(), 'gen-types', '--out', 'src/gen', 'protos/greeter.proto']);
    expect(fs.existsSync(path.join(appDir, 'src', 'gen', 'app', 'Greeter.ts'))).toBe(true);
    const tsc = path.join(appDir, 'node_modules', 'typescript', 'bin', 'tsc');
    expect(compile(appDir, tsc)).toEqual({ code: 0, output: '' });
  }, 120_000);

  it("compiles the README's TypeScript under strict against the installed package", () => {
    const readmeDir = path.join(work, 'readme');
    fs.mkdirSync(readmeDir);
    fs.symlinkSync(path.join(appDir, 'node_modules'), path.join(readmeDir, 'node_modules'));
    writeReadmeApp(readmeDir);
    expect(compile(readmeDir, path.join(appDir, 'node_modules', 'typescript', 'bin', 'tsc'))).toEqual({ code: 0, output: '' });
  }, 120_000);

  it('serves unary and client-streaming calls on two nodes: redirected from the node without the service, with and without an interceptor', async () => {
    const common = { nats: [nats().url], cluster: 'package', cliPath: cli(), modulePath: path.join(appDir, 'dist', 'register.js') };
    const [n1] = await Promise.all([
      startBrokerProcess({ ...common, nodeId: 'n1', extraArgs: ['--services', 'app.Clock'] }),
      startBrokerProcess({ ...common, nodeId: 'n2' }),
    ]);
    const client = spawnTracked(process.execPath, [path.join(appDir, 'dist', 'client.js'), n1.endpoint], { cwd: appDir, stdio: ['ignore', 'pipe', 'pipe'] });
    const line = await waitForLine(client, /^\{/, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${outputOf(client)}\n--- n1:\n${n1.output()}`);
    });
    expect((await exitOf(client)).code, outputOf(client)).toBe(0);
    const seen = JSON.parse(line) as Record<string, unknown>;
    expect(seen.plain).toBe('n2');
    expect(seen.intercepted).toBe('n2');
    expect(seen.logged).toEqual(['/app.Greeter/Hello', '/app.Greeter/HelloAll']);
    expect(seen.session).toBe('n2');
    // Client-streaming: every message arrives (older grpc-js lost the last one at the half-close).
    expect(seen.streamed).toEqual(['hello a, b, c', 'n2']);
    expect(seen.streamedIntercepted).toEqual(['hello d, e', 'n2']);
  }, 60_000);
});
