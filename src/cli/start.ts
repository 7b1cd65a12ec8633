import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Broker } from '../broker';
import { ConfigError } from '../errors';
import { createLogger } from '../log';
import { readConfigFile, toBrokerOptions, type StartConfig } from './start-config';

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

/** `peerbroker start`: runs one broker until SIGTERM or SIGINT. */
export async function runStart(flags: Partial<StartConfig> & { config?: string }): Promise<void> {
  const { config: file, ...given } = flags;
  const fromFile = file ? readConfigFile(file) : {};
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
  const { module, logLevel, ...options } = toBrokerOptions({ ...fromFile, ...defined });
  const logger = createLogger({ level: logLevel });
  const broker = new Broker({ ...options, logger });
  if (module) await (await loadModule(module))(broker);
  await broker.start();
  // One line on stdout that scripts and tests can wait for.
  process.stdout.write(`peerbroker: node ${broker.nodeId} listening on ${broker.endpoint}\n`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    broker.log.info({ signal }, 'draining');
    // SIGTERM drains (calls move to peers, in-flight ones finish); a second signal stops at once.
    process.once(signal, () => {
      broker.log.warn({ signal }, 'second signal: stopping now');
      void broker.stop().then(() => process.exit(0));
    });
    broker.drain().then(
      () => process.exit(0),
      (err) => {
        broker.log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
