import { parseRuntimeValues, RUNTIME_KEYS, type RuntimeConfig, type RuntimeKey } from '../broker';
import { ConfigRejectedError, configSubject, newConfigMessage, permissionViolation, publishConfig, readCurrentConfig, type ConfigMessage } from '../cluster';
import { ConfigError } from '../errors';
import type { Connection } from './connection';
import { connectCli } from './security-flags';
import { START_OPTIONS } from './start-config';

function connectTo(c: Connection) {
  return connectCli(c.nats, c.natsAuth, 'peerbroker-config');
}

// The user's name of each runtime option is its flag (`period-ms`), both ways: in what
// `config set` takes and in what `set` and `get` print. Messages keep the option names.
const FLAG_OF = Object.fromEntries(START_OPTIONS.filter((o) => o.runtime).map((o) => [o.key, o.flag])) as Record<RuntimeKey, string>;
const KEY_OF = Object.fromEntries(RUNTIME_KEYS.map((k) => [FLAG_OF[k], k])) as Record<string, RuntimeKey>;
const flagPath = (path: readonly PropertyKey[]) =>
  path.map((p, i) => (typeof p === 'number' ? `[${p}]` : (i > 0 ? '.' : '') + (i === 0 ? (FLAG_OF[p as RuntimeKey] ?? String(p)) : String(p)))).join('');

/** Runtime values by the names the user knows (`{ 'period-ms': 250 }`). */
export function byFlagName(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [FLAG_OF[k as RuntimeKey] ?? k, v]));
}

/** Parses `key=value` pairs: numbers, booleans, or JSON for rules. Unknown keys name the key. */
export function parseAssignments(pairs: string[]): RuntimeConfig {
  const values: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigError(pair, "expected key=value, e.g. 'threshold=0.6'");
    const flag = pair.slice(0, eq).trim();
    const raw = pair.slice(eq + 1).trim();
    const key = KEY_OF[flag];
    if (!key) throw new ConfigError(flag, `is not a runtime setting (known: ${Object.keys(KEY_OF).join(', ')})`);
    values[key] = parseValue(flag, raw);
  }
  return parseRuntimeValues(values, flagPath);
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
export async function runConfigSet(c: Connection, pairs: string[]): Promise<void> {
  if (pairs.length === 0) throw new ConfigError('config set', 'give at least one key=value');
  const change = parseAssignments(pairs);
  const nc = await connectTo(c);
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
      current = await readCurrentConfig(nc, c.cluster, c.clusterKey);
    } catch (err) {
      // A kept config that does not verify is not merged: its values are not trusted.
      if (!(err instanceof ConfigRejectedError)) throw err;
      process.stderr.write(`peerbroker: warning: ignoring the kept config (${err.message}); only the values given now are set\n`);
    }
    const merged = parseRuntimeValues({ ...(current?.values ?? {}), ...change }, flagPath);
    const message = newConfigMessage(merged);
    // Nodes drop a change set before the one in force (a replay): never go back in time.
    if (current && message.setAt <= current.setAt) message.setAt = current.setAt + 1;
    const { durable, listening } = await publishConfig(nc, c.cluster, message, c.clusterKey);
    await new Promise((r) => setImmediate(r));
    const denied = refused.find((r) => r.includes(`'${configSubject(c.cluster)}'`));
    if (denied) throw new Error(`the NATS server refused the change (permissions violation: ${denied}); nothing was published`);
    if (!listening && !durable) {
      throw new Error(`no node of cluster '${c.cluster}' is listening and JetStream is off, so the change is not kept: no node will see it`);
    }
    const reach = listening
      ? durable
        ? ' and kept in JetStream'
        : ' (JetStream is off: nodes started later will not see it)'
      : ` and kept in JetStream; no node of cluster '${c.cluster}' is listening now: nodes that start later take it at start`;
    process.stdout.write(`config ${message.version} published to cluster '${c.cluster}'${reach}\n${JSON.stringify(byFlagName(merged), null, 2)}\n`);
  } finally {
    await nc.close();
  }
}

/** `peerbroker config get`: prints the config kept in JetStream, keys spelled as `config set` takes them. */
export async function runConfigGet(c: Connection): Promise<void> {
  const nc = await connectTo(c);
  try {
    const current = await readCurrentConfig(nc, c.cluster, c.clusterKey);
    process.stdout.write(
      current
        ? `${JSON.stringify({ ...current, values: byFlagName(current.values) }, null, 2)}\n`
        : `no runtime config kept for cluster '${c.cluster}' (nodes use their start options)\n`,
    );
  } finally {
    await nc.close();
  }
}
