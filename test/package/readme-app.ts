import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository's root. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** A fenced block of README.md: its language and text. */
export interface CodeBlock {
  lang: string;
  text: string;
  /** 1-based line of the opening fence, for messages. */
  line: number;
}

/** The fenced code blocks of a Markdown text, in order. */
export function codeBlocks(markdown: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    if (end < 0) throw new Error(`README.md:${i + 1}: code block never closed`);
    blocks.push({ lang: open[1], text: lines.slice(i + 1, end).join('\n') + '\n', line: i + 1 });
    i = end;
  }
  return blocks;
}

/**
 * The files peerbroker's tarball holds, as `npm pack` lists them (scripts ignored: the
 * caller has built dist/ already). Offline, and the same list `npm publish` would use.
 */
export function packedFiles(): string[] {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return (JSON.parse(out) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
}

/**
 * Writes into `appDir` what a new user writes: the README's protos (blocks whose first line is
 * `// protos/<name>.proto`) and the bank example's as protos/bank.proto, types for them made
 * with the package's own `peerbroker gen-types`, every ```ts block as src/readme-<line>.ts,
 * and a strict ES-module tsconfig. Resolves modules from `appDir/node_modules`, which must
 * hold peerbroker and its peers.
 */
export function writeReadmeApp(appDir: string): string[] {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const blocks = codeBlocks(readme);
  const protoDir = path.join(appDir, 'protos');
  fs.mkdirSync(protoDir, { recursive: true });
  fs.copyFileSync(path.join(REPO_ROOT, 'proto', 'examples', 'bank.proto'), path.join(protoDir, 'bank.proto'));
  for (const b of blocks.filter((b) => b.lang === 'proto')) {
    const name = /^\/\/ protos\/([\w-]+\.proto)\n/.exec(b.text)?.[1];
    if (name) fs.writeFileSync(path.join(protoDir, name), b.text);
  }
  const cli = path.join(appDir, 'node_modules', 'peerbroker', 'dist', 'src', 'cli', 'main.js');
  const protos = fs.readdirSync(protoDir).map((f) => path.join('protos', f));
  execFileSync(process.execPath, [cli, 'gen-types', '--out', 'src/gen', ...protos], { cwd: appDir, stdio: ['ignore', 'ignore', 'pipe'] });
  const sources = blocks
    .filter((b) => b.lang === 'ts')
    .map((b) => {
      const file = path.join('src', `readme-${b.line}.ts`);
      fs.writeFileSync(path.join(appDir, file), b.text);
      return file;
    });
  fs.writeFileSync(path.join(appDir, 'package.json'), JSON.stringify({ name: 'readme-app', private: true, type: 'module' }, null, 2));
  fs.writeFileSync(
    path.join(appDir, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'ES2022',
          module: 'Node16',
          moduleResolution: 'Node16',
          types: ['node'],
          // peerbroker's declarations are checked too; the other packages' are not ours to fix.
          skipLibCheck: false,
        },
        include: ['src/**/*.ts'],
      },
      null,
      2,
    ),
  );
  return sources;
}

/** Runs `tsc -p appDir` with the TypeScript at `tsc`; resolves with its exit code and output. */
export function compile(appDir: string, tsc = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc')): { code: number | null; output: string } {
  const r = spawnSync(process.execPath, [tsc, '-p', appDir], { cwd: appDir, encoding: 'utf8' });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}
