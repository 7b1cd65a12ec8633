import { parseRuntimeValues, type RuntimeConfig } from '../broker';
import { ConfigRejectedError, configSubject, newConfigMessage, permissionViolation, publishConfig, readCurrentConfig, type ClusterKey, type ConfigMessage, type NatsAuthOptions } from '../cluster';
import { ConfigError } from '../errors';
import { connectCli } from './security-flags';

/** Where `config set` and `config get` talk to, and how. */
export interface ConfigFlags {
  nats: string;
  cluster: string;
  /** How to authenticate to NATS. Default none. */
  natsAuth?: NatsAuthOptions;
  /** Signs the change (set) and checks the kept one (get, and set before merging). Default none. */
  clusterKey?: ClusterKey;
}

function connectTo(flags: ConfigFlags) {
  return connectCli(flags.nats, flags.natsAuth, 'peerbroker-config');
}

/** Flag names of the runtime values, and the option each sets. */
const KEYS: Record<string, keyof RuntimeConfig> = {
  threshold: 'threshold',
  margin: 'margin',
  'period-ms': 'periodMs',
  'max-hops': 'maxHops',
  'peer-choice': 'peerChoice',
  'forward-legacy': 'forwardLegacy',
  sessions: 'sessions',
  dedicated: 'dedicated',
};
const FLAG_OF = Object.fromEntries(Object.entries(KEYS).map(([flag, key]) => [key, flag]));

/** Parses `key=value` pairs: numbers, booleans, or JSON for rules. Unknown keys name the key. */
export function parseAssignments(pairs: string[]): RuntimeConfig {
  const values: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigError(pair, "expected key=value, e.g. 'threshold=0.6'");
    const flag = pair.slice(0, eq).trim();
    const raw = pair.slice(eq + 1).trim();
    const key = KEYS[flag];
    if (!key) throw new ConfigError(flag, `is not a runtime setting (known: ${Object.keys(KEYS).join(', ')})`);
    values[key] = parseValue(flag, raw);
  }
  return parseRuntimeValues(values, (k) => FLAG_OF[k] ?? k);
}

function parseValue(flag: string, raw: string): unknown {
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (raw.startsWith('[') || raw.startsWith('{')) {
    try {
      return JSON.parse(raw);
    } catch {
      throw new ConfigError(flag, 'is not valid JSON');
    }
  }
  const n = Number(raw);
  return raw !== '' && Number.isFinite(n) ? n : raw;
}

/** `peerbroker config set k=v ...`: validates, merges with the current config, stores and publishes it. */
export async function runConfigSet(flags: ConfigFlags, pairs: string[]): Promise<void> {
  if (pairs.length === 0) throw new ConfigError('config set', 'give at least one key=value');
  const change = parseAssignments(pairs);
  const nc = await connectTo(flags);
  // A publish the server's permissions refuse is dropped silently; its -ERR comes as a status.
  const refused: string[] = [];
  void (async () => {
    for await (const st of nc.status()) {
      const violation = st.type === 'error' ? permissionViolation(st) : undefined;
      if (violation) refused.push(violation);
    }
  })();
  try {
    let current: ConfigMessage | undefined;
    try {
      current = await readCurrentConfig(nc, flags.cluster, flags.clusterKey);
    } catch (err) {
      // A kept config that does not verify is not merged: its values are not trusted.
      if (!(err instanceof ConfigRejectedError)) throw err;
      process.stderr.write(`peerbroker: warning: ignoring the kept config (${err.message}); only the values given now are set\n`);
    }
    const merged = parseRuntimeValues({ ...(current?.values ?? {}), ...change }, (k) => FLAG_OF[k] ?? k);
    const message = newConfigMessage(merged);
    // Nodes drop a change set before the one in force (a replay): never go back in time.
    if (current && message.setAt <= current.setAt) message.setAt = current.setAt + 1;
    const { durable } = await publishConfig(nc, flags.cluster, message, flags.clusterKey);
    await new Promise((r) => setImmediate(r));
    const denied = refused.find((r) => r.includes(`'${configSubject(flags.cluster)}'`));
    if (denied) throw new Error(`the NATS server refused the change (permissions violation: ${denied}); nothing was published`);
    process.stdout.write(
      `config ${message.version} published to cluster '${flags.cluster}'` +
        (durable ? ' and kept in JetStream' : ' (JetStream is off: nodes started later will not see it)') +
        `\n${JSON.stringify(merged, null, 2)}\n`,
    );
  } finally {
    await nc.close();
  }
}

/** `peerbroker config get`: prints the config kept in JetStream. */
export async function runConfigGet(flags: ConfigFlags): Promise<void> {
  const nc = await connectTo(flags);
  try {
    const current = await readCurrentConfig(nc, flags.cluster, flags.clusterKey);
    process.stdout.write(
      current ? `${JSON.stringify(current, null, 2)}\n` : `no runtime config kept for cluster '${flags.cluster}' (nodes use their start options)\n`,
    );
  } finally {
    await nc.close();
  }
}
