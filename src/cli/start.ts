import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Broker } from '../broker';
import { ConfigError } from '../errors';
import { warnOfSecrets } from './security-flags';
import { flagNamed, readConfigFile, toBrokerOptions, type StartConfig } from './start-config';

/** Loads a user module and calls its `register(broker)`. */
async function loadModule(file: string): Promise<(broker: Broker) => void | Promise<void>> {
  const abs = path.resolve(file);
  let mod: { register?: unknown; default?: { register?: unknown } };
  try {
    mod = await import(pathToFileURL(require.resolve(abs)).href);
  } catch (err) {
    throw new ConfigError('module', `cannot load '${file}': ${(err as Error).message.split('\n')[0]}`);
  }
  const register = mod.register ?? mod.default?.register;
  if (typeof register !== 'function') throw new ConfigError('module', `'${file}' does not export register(broker)`);
  return register as (broker: Broker) => void;
}

/**
 * `peerbroker start`: runs one broker until SIGTERM or SIGINT (it drains, then exits).
 * `flags` are those given on the command line, by flag name; they win over the file's keys.
 */
export async function runStart(configFile: string | undefined, flags: StartConfig): Promise<void> {
  warnOfSecrets(flags);
  const fromFile = configFile ? readConfigFile(configFile) : {};
  // An error names the field as the user wrote it: the YAML key if it came from the file.
  const spelled = (flag: string) => (flag in fromFile && !(flag in flags) ? flag : `--${flag}`);
  const { module, ...options } = toBrokerOptions({ ...fromFile, ...flags }, spelled);
  let broker: Broker;
  try {
    broker = new Broker({ ...options, handleSignals: true });
    if (module) await (await loadModule(module))(broker);
    await broker.start();
  } catch (err) {
    throw flagNamed(err, spelled);
  }
  // Lines on stdout that scripts and tests can wait for; the HTTP one first, so it is there when the other is.
  if (broker.httpUrl) process.stdout.write(`peerbroker: node ${broker.nodeId} serves HTTP on ${broker.httpUrl}\n`);
  process.stdout.write(`peerbroker: node ${broker.nodeId} listening on ${broker.endpoint}\n`);
}
