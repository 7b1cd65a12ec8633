#!/usr/bin/env node
// TypeScript types for .proto files, made by proto-loader-gen-types with the flags that match
// PROTO_LOADER_OPTIONS (src/transport/broker-proto.ts): the types then describe the objects
// peerbroker's loader really produces. One place for those flags, used two ways:
//   node scripts/gen-types.js            this repository's proto/ into src/generated (npm run build)
//   peerbroker gen-types --out DIR ...   an application's own protos (src/cli/gen-types-command.ts)
// Plain CommonJS, not TypeScript: the build runs it before tsc, which needs its output.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

/** proto-loader-gen-types flags matching PROTO_LOADER_OPTIONS (keepCase false is its default). */
// --importFileExtension=.js: the generated files import each other as ES modules need (and CommonJS accepts).
const GEN_FLAGS = ['--longs=String', '--enums=String', '--defaults', '--oneofs', '--grpcLib=@grpc/grpc-js', '--importFileExtension=.js'];

/** peerbroker's own protos (peerbroker/v1/options.proto and the rest), always on the include path. */
const PEERBROKER_PROTO_DIR = path.resolve(__dirname, '..', 'proto');

/**
 * Writes types for `protos` into `outDir`. Each file is named relative to the first of
 * `includeDirs` that holds it (so its imports resolve the same way); the directories of
 * the files and peerbroker's proto folder are searched too.
 */
function genTypes({ protos, outDir, includeDirs = [], quiet = false }) {
  if (protos.length === 0) throw new Error('no .proto files given');
  const absolute = protos.map((p) => path.resolve(p));
  for (const p of absolute) if (!fs.existsSync(p)) throw new Error(`'${p}' does not exist`);
  const dirs = unique([...includeDirs.map((d) => path.resolve(d)), ...absolute.map((p) => path.dirname(p)), PEERBROKER_PROTO_DIR]);
  const names = absolute.map((p) => {
    const dir = dirs.find((d) => !path.relative(d, p).startsWith('..'));
    return path.relative(dir, p);
  });
  // File names go first: --includeDirs is an array option and would swallow them.
  const args = [...names, ...GEN_FLAGS, `--outDir=${path.resolve(outDir)}`, ...dirs.map((d) => `--includeDirs=${d}`)];
  execFileSync(process.execPath, [genTypesBin(), ...args], { stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit' });
}

/** proto-loader-gen-types of the @grpc/proto-loader the application has (a peer dependency). */
function genTypesBin() {
  const manifest = require.resolve('@grpc/proto-loader/package.json', { paths: [process.cwd(), __dirname] });
  const bin = require(manifest).bin['proto-loader-gen-types'];
  return path.join(path.dirname(manifest), bin);
}

function unique(list) {
  return [...new Set(list)];
}

function protoFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return protoFiles(p);
    return e.name.endsWith('.proto') ? [p] : [];
  });
}

module.exports = { genTypes, GEN_FLAGS, PEERBROKER_PROTO_DIR };

if (require.main === module) {
  // The repository's build: every .proto under proto/ into src/generated, so a .proto change always reaches the types.
  const outDir = path.resolve(__dirname, '..', 'src', 'generated');
  fs.rmSync(outDir, { recursive: true, force: true });
  genTypes({ protos: protoFiles(PEERBROKER_PROTO_DIR), outDir, includeDirs: [PEERBROKER_PROTO_DIR], quiet: true });
}
