import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository's proto/ folder (from src/ under vitest, and from dist/src/ when built). */
export const PROTO_DIR = findProtoDir();

function findProtoDir(): string {
  const candidates = [path.resolve(__dirname, '..', 'proto'), path.resolve(__dirname, '..', '..', 'proto')];
  for (const c of candidates) if (fs.existsSync(path.join(c, 'peerbroker', 'v1', 'cluster.proto'))) return c;
  throw new Error(`peerbroker: proto folder not found near ${__dirname}`);
}
