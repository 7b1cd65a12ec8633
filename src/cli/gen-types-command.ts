import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../errors';
import { PROTO_DIR } from '../proto-path';

/** Options of `peerbroker gen-types`. */
export interface GenTypesFlags {
  /** Folder the types are written to. Required. */
  out: string;
  /** Folders imports are resolved in, besides each file's own folder and peerbroker's protos. */
  includeDir?: string[];
}

interface GenTypesScript {
  genTypes(args: { protos: string[]; outDir: string; includeDirs?: string[] }): void;
}

/**
 * Writes TypeScript types for an application's .proto files with proto-loader-gen-types,
 * using the flags that match PROTO_LOADER_OPTIONS (kept once, in scripts/gen-types.js).
 */
export function runGenTypes(protos: string[], flags: GenTypesFlags): void {
  const missing = protos.find((p) => !fs.existsSync(p));
  if (missing) throw new ConfigError('proto', `'${missing}' does not exist`);
  // scripts/ sits beside proto/ in the repository and in the package.
  const script = path.join(PROTO_DIR, '..', 'scripts', 'gen-types.js');
  const { genTypes } = require(script) as GenTypesScript;
  try {
    genTypes({ protos, outDir: flags.out, includeDirs: flags.includeDir ?? [] });
  } catch (err) {
    // proto-loader-gen-types has printed why on stderr already.
    const code = (err as { status?: number }).status;
    if (code === undefined) throw err;
    throw new Error(`proto-loader-gen-types failed (exit code ${code})`);
  }
}
