#!/usr/bin/env node
// Regenerates the typed stubs in src/generated from every .proto under proto/.
// Runs as part of `npm run build`, so a .proto change always reaches the types.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const protoDir = path.join(root, 'proto');
const outDir = path.join(root, 'src', 'generated');

function protoFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return protoFiles(p);
    return e.name.endsWith('.proto') ? [path.relative(protoDir, p)] : [];
  });
}

fs.rmSync(outDir, { recursive: true, force: true });
const bin = path.join(root, 'node_modules', '.bin', 'proto-loader-gen-types');
// File names go first: --includeDirs is an array option and would swallow them.
execFileSync(bin, [
  ...protoFiles(protoDir),
  '--longs=String', '--longs=String', '--enums=String', '--defaults', '--oneofs',
  '--grpcLib=@grpc/grpc-js', `--outDir=${outDir}`, `--includeDirs=${protoDir}`,
], { stdio: 'inherit', cwd: root });
