import * as fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { brokerOptionsSchema, cliOptions, option, parseBrokerOptions, type BrokerOptions, type CliOption } from '../broker';
import { ConfigError } from '../errors';
import { natsAuthFrom, nested } from './security-flags';

/** Options of `peerbroker start` itself, declared like the broker's (flag, YAML key, help from here). */
const startOnlySchema = z.object({
  module: option(z.string().min(1).optional(), { description: 'module exporting register(broker), e.g. dist/examples/bank/index.js', arg: 'path' }),
});

/** Every flag and YAML key of `peerbroker start`: the broker's options that have one, then the command's own. */
export const START_OPTIONS: readonly CliOption[] = [...cliOptions(brokerOptionsSchema.shape), ...cliOptions(startOnlySchema.shape)];

const byFlag = new Map(START_OPTIONS.map((o) => [o.flag, o]));

/** Start settings by flag name (also the keys of a YAML config file), e.g. `{ 'max-hops': 3 }`. */
export type StartConfig = Record<string, unknown>;

/** Reads a YAML config file; an unknown key is an error naming it. Types are checked with the flags. */
export function readConfigFile(file: string): StartConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('config', `cannot read '${file}': ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text) ?? {};
  } catch (err) {
    throw new ConfigError('config', `'${file}' is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof data !== 'object' || Array.isArray(data)) throw new ConfigError('config', `'${file}' must hold a mapping of keys to values`);
  for (const key of Object.keys(data as object)) {
    if (!byFlag.has(key)) throw new ConfigError(key, `is not a known option (in '${file}')`);
  }
  return data as StartConfig;
}

/** How the user spelled a flag: `--max-hops` on the command line, `max-hops` in a YAML file. */
export type Spelling = (flag: string) => string;

/**
 * Start settings by flag name to broker options (and the module to load), validated;
 * an error names the flag as `spelled` says (default: the YAML key).
 */
export function toBrokerOptions(config: StartConfig, spelled: Spelling = (f) => f): BrokerOptions & { module?: string } {
  const options: Record<string, unknown> = {};
  for (const [flag, raw] of Object.entries(config)) {
    const o = byFlag.get(flag);
    if (!o || raw === undefined || o.field) continue;
    // A list may be given comma-separated (a flag, or a YAML string).
    options[o.key] = o.kind === 'list' && typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : raw;
  }
  for (const key of new Set(START_OPTIONS.filter((o) => o.field).map((o) => o.key))) {
    options[key] = key === 'natsAuth' ? natsAuthFrom(config) : nested(key, config);
  }
  for (const k of Object.keys(options)) if (options[k] === undefined) delete options[k];
  if (options.nodeId === undefined) throw new ConfigError(spelled('node-id'), 'is required');
  const { module, ...broker } = options;
  try {
    parseBrokerOptions(broker as BrokerOptions);
  } catch (err) {
    throw flagNamed(err, spelled);
  }
  return { ...(broker as BrokerOptions), module: module as string | undefined };
}

/** A ConfigError naming an option (`maxHops`, `natsAuth.passFile`, `sessions[0].enter`) renamed to its flag as spelled. */
export function flagNamed(err: unknown, spelled: Spelling = (f) => f): unknown {
  if (!(err instanceof ConfigError)) return err;
  const m = /^([A-Za-z]+)(?:\.([A-Za-z]+))?(.*)$/.exec(err.field);
  if (!m) return err;
  const [, key, field, rest] = m;
  const withField = START_OPTIONS.find((o) => o.key === key && o.field === field);
  if (field && withField) return err.renamed(spelled(withField.flag) + rest);
  const plain = START_OPTIONS.find((o) => o.key === key && !o.field) ?? START_OPTIONS.find((o) => o.key === key);
  return plain ? err.renamed(spelled(plain.flag) + (field ? `.${field}` : '') + rest) : err;
}
