import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, packedFiles } from './readme-app';

interface Manifest {
  main: string;
  types: string;
  bin: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
}

const manifestText = fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8');
const manifest = JSON.parse(manifestText) as Manifest;
const strip = (p: string) => p.replace(/^\.\//, '');

describe('the package manifest and what npm pack ships', () => {
  const files = packedFiles();

  it('ships the built code, its declarations and the protos, and nothing of the repository besides', () => {
    expect(files.filter((f) => !/^(dist\/src\/|proto\/peerbroker\/v1\/|scripts\/gen-types\.js$|package\.json$|README\.md$|docs\/design\.md$)/.test(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.map') || f.includes('generated/bank') || (f.startsWith('dist/src/generated/') && !f.endsWith('.d.ts')))).toEqual([]);
    expect(files).toContain('proto/peerbroker/v1/options.proto');
    // README links to the design: it ships with it.
    expect(files).toContain('docs/design.md');
    // Nothing built from a source that is gone (prepack builds into an empty dist/).
    const orphans = files.filter((f) => /^dist\/src\/.*\.js$/.test(f) && !f.startsWith('dist/src/generated/') && !fs.existsSync(path.join(REPO_ROOT, f.replace(/^dist\//, '').replace(/\.js$/, '.ts'))));
    expect(orphans).toEqual([]);
  });

  it('ships every file main, types, bin and exports name', () => {
    const targets = [manifest.main, manifest.types, ...Object.values(manifest.bin)];
    for (const entry of Object.values(manifest.exports)) {
      if (typeof entry === 'object') targets.push(...Object.values(entry));
    }
    for (const t of targets) expect(files, t).toContain(strip(t));
  });

  it('builds before packing, not on install, and takes grpc-js, proto-loader and the OpenTelemetry API from the application', () => {
    expect(manifest.scripts.prepack).toMatch(/rmSync\('dist'.* && npm run build$/);
    for (const hook of ['prepare', 'preinstall', 'install', 'postinstall']) expect(manifest.scripts[hook], hook).toBeUndefined();
    // @opentelemetry/api too: its globals (the tracer provider) are read only by a copy of a compatible
    // version, so peerbroker's spans go where the application's SDK sends its own only with one copy.
    expect(Object.keys(manifest.peerDependencies).sort()).toEqual(['@grpc/grpc-js', '@grpc/proto-loader', '@opentelemetry/api']);
    expect(manifest.dependencies['@grpc/grpc-js']).toBeUndefined();
    expect(manifest.dependencies['@grpc/proto-loader']).toBeUndefined();
  });

  it('needs no correction by npm pkg fix (npm publish would make it, e.g. drop a bin it finds invalid)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerbroker-manifest-'));
    try {
      fs.writeFileSync(path.join(dir, 'package.json'), manifestText);
      execFileSync('npm', ['pkg', 'fix'], { cwd: dir, stdio: 'ignore' });
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))).toEqual(manifest);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
