import { randomBytes } from 'node:crypto';
import { ErrorCode, type KV, type NatsConnection, type Subscription } from 'nats';
import { z } from 'zod';
import { SIGNATURE_ALG, type ClusterKey } from './cluster-key';

/** Values that `peerbroker config set` can change on every live node, by option name; the broker checks them. */
export type RuntimeValues = Record<string, unknown>;

/** A config change as it travels: the full current values and a version to dedupe by. */
export interface ConfigMessage {
  version: string;
  setAt: number;
  values: RuntimeValues;
}

/** The key-value bucket that keeps the current config (JetStream), per cluster. */
export function configBucket(cluster: string): string {
  return `peerbroker-config-${cluster}`;
}

/** `peerbroker.<cluster>.config` */
export function configSubject(cluster: string): string {
  return `peerbroker.${cluster}.config`;
}

const KEY = 'current';
const MAX_CONFIG_BYTES = 256 * 1024;

const messageSchema = z.object({
  version: z.string().min(1).max(64),
  setAt: z.number(),
  values: z.record(z.string(), z.unknown()),
});

/**
 * A signed config change, as JSON: `payload` is the base64 of the config message's
 * JSON, `signature` the base64 HMAC-SHA256 of those bytes under the config key
 * derived from the cluster secret whose id is `keyId`.
 */
const envelopeSchema = z.object({
  alg: z.string().max(32),
  keyId: z.string().max(64),
  payload: z.string().max(Math.ceil((MAX_CONFIG_BYTES * 4) / 3) + 4),
  signature: z.string().max(128),
});

/** Why a config message was not applied; each is counted. */
export type ConfigDropReason = 'malformed' | 'unsigned' | 'bad-signature' | 'replay' | 'future';

/** A config message that was refused, with the reason it is counted under. */
export class ConfigRejectedError extends Error {
  constructor(
    readonly reason: ConfigDropReason,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigRejectedError';
  }
}

function parseJson(data: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    throw new ConfigRejectedError('malformed', `${what} is not JSON`);
  }
}

/**
 * Parses a config message; throws a ConfigRejectedError with a short reason. With a
 * cluster key only a signed message whose signature verifies is read; without one, a
 * signed message is unwrapped unchecked (as reports are).
 */
export function decodeConfigMessage(data: Uint8Array, key?: ClusterKey): ConfigMessage {
  if (data.length > MAX_CONFIG_BYTES) throw new ConfigRejectedError('malformed', `config message of ${data.length} bytes is too large`);
  let json = parseJson(data, 'config message');
  const env = envelopeSchema.safeParse(json);
  if (key) {
    if (!env.success) throw new ConfigRejectedError('unsigned', 'config message is not signed, and this cluster requires signatures');
    const { alg, keyId, payload, signature } = env.data;
    const bytes = Buffer.from(payload, 'base64');
    if (alg !== SIGNATURE_ALG || !key.verify('config', bytes, Buffer.from(signature, 'base64'), keyId)) {
      throw new ConfigRejectedError('bad-signature', 'config message signature does not verify');
    }
    json = parseJson(bytes, 'signed config message');
  } else if (env.success) {
    json = parseJson(Buffer.from(env.data.payload, 'base64'), 'signed config message');
  }
  const r = messageSchema.safeParse(json);
  if (!r.success) throw new ConfigRejectedError('malformed', `config message is malformed: ${r.error.issues[0].message}`);
  return r.data as ConfigMessage;
}

/** A config message as it travels: JSON, signed when a cluster key is given. */
export function encodeConfigMessage(m: ConfigMessage, key?: ClusterKey): Uint8Array {
  const json = Buffer.from(JSON.stringify(m));
  if (!key) return json;
  const envelope = { alg: SIGNATURE_ALG, keyId: key.id, payload: json.toString('base64'), signature: key.sign('config', json).toString('base64') };
  return Buffer.from(JSON.stringify(envelope));
}

/** A new message carrying `values`. */
export function newConfigMessage(values: RuntimeValues): ConfigMessage {
  return { version: `${Date.now()}-${randomBytes(4).toString('hex')}`, setAt: Date.now(), values };
}

/** Config messages set further ahead of this node's clock are dropped, ms. */
export const MAX_CONFIG_CLOCK_SKEW_MS = 30_000;

/**
 * Watches the cluster's config: the JetStream key-value bucket (current value at
 * start, then every change) and the plain config subject (for servers without
 * JetStream). Each version is delivered once; a message set before the one applied
 * last (a replay) or far in the future is dropped.
 */
export class ConfigWatcher {
  private sub?: Subscription;
  private kv?: KV;
  private stopped = false;
  private lastVersion = '';
  private lastSetAt = -Infinity;

  constructor(
    private readonly nc: NatsConnection,
    private readonly cluster: string,
    private readonly onConfig: (m: ConfigMessage) => void,
    /** A message was dropped (`drop` says why) or the store is unavailable (no `drop`). */
    private readonly onError: (reason: string, drop?: ConfigDropReason) => void,
    private readonly key?: ClusterKey,
  ) {}

  /**
   * Subscribes to the config subject and opens the bucket. Waits (at most
   * `initialWaitMs`) for the stored config, so a node starts with it in force; a bucket
   * that is slow or missing (no JetStream) keeps being tried in the background.
   */
  async start(initialWaitMs = 1_000): Promise<void> {
    this.sub = this.nc.subscribe(configSubject(this.cluster), { callback: (err, msg) => !err && this.deliver(msg.data) });
    let initialized!: () => void;
    const ready = new Promise<void>((resolve) => (initialized = resolve));
    void this.watchBucket(initialized).finally(initialized);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ready, new Promise<void>((resolve) => (timer = setTimeout(resolve, initialWaitMs)))]);
    clearTimeout(timer);
  }

  private async watchBucket(initialized: () => void): Promise<void> {
    try {
      this.kv = await openBucket(this.nc, this.cluster);
    } catch (err) {
      if (!this.stopped) this.onError(`JetStream key-value store unavailable, config changes are not kept: ${(err as Error).message}`);
      return;
    }
    if (this.stopped) return;
    // The stored value (if any) is delivered before initializedFn is called.
    const watch = await this.kv.watch({ key: KEY, initializedFn: initialized });
    void (async () => {
      for await (const e of watch) {
        if (this.stopped) break;
        if (e.operation === 'PUT') this.deliver(e.value);
      }
    })().catch((err) => this.onError(`config watch ended: ${(err as Error).message}`));
    this.stopWatch = () => watch.stop();
  }

  private stopWatch: () => void = () => {};

  private deliver(data: Uint8Array): void {
    let m: ConfigMessage;
    try {
      m = decodeConfigMessage(data, this.key);
    } catch (err) {
      this.onError((err as Error).message, err instanceof ConfigRejectedError ? err.reason : 'malformed');
      return;
    }
    if (m.version === this.lastVersion) return;
    if (m.setAt < this.lastSetAt) {
      this.onError(`config ${m.version.slice(0, 64)} was set before the one in force: a replay`, 'replay');
      return;
    }
    if (m.setAt > Date.now() + MAX_CONFIG_CLOCK_SKEW_MS) {
      this.onError(`config ${m.version.slice(0, 64)} is set in the future`, 'future');
      return;
    }
    this.lastVersion = m.version;
    this.lastSetAt = m.setAt;
    this.onConfig(m);
  }

  stop(): void {
    this.stopped = true;
    this.sub?.unsubscribe();
    this.stopWatch();
  }
}

/** The cluster's config bucket (created when missing and allowed); rejects without JetStream. */
function openBucket(nc: NatsConnection, cluster: string): Promise<KV> {
  return nc.jetstream({ timeout: 2_000 }).views.kv(configBucket(cluster), { history: 5 });
}

/**
 * Reads the current config from the bucket; undefined when none was set or JetStream
 * is off. With a key, a kept config that does not verify throws a ConfigRejectedError.
 */
export async function readCurrentConfig(nc: NatsConnection, cluster: string, key?: ClusterKey): Promise<ConfigMessage | undefined> {
  let value: Uint8Array | undefined;
  try {
    const e = await (await openBucket(nc, cluster)).get(KEY);
    value = e && e.operation === 'PUT' ? e.value : undefined;
  } catch {
    return undefined;
  }
  return value ? decodeConfigMessage(value, key) : undefined;
}

/** How long a published change waits to learn whether anyone subscribes to the config subject, ms. */
const LISTENER_PROBE_MS = 300;

/**
 * Stores `m` in the bucket (when JetStream is on) and publishes it on the config
 * subject; signed with `key` if given. `listening` is false when no node subscribes to
 * the subject: it goes out as a request, which the server answers with "no responders"
 * at once when nobody can receive it (nodes never reply; a time-out means someone got it).
 */
export async function publishConfig(nc: NatsConnection, cluster: string, m: ConfigMessage, key?: ClusterKey): Promise<{ durable: boolean; listening: boolean }> {
  const data = encodeConfigMessage(m, key);
  let durable = false;
  try {
    await (await openBucket(nc, cluster)).put(KEY, data);
    durable = true;
  } catch {
    // No JetStream: live nodes still get it on the subject.
  }
  let listening = true;
  try {
    await nc.request(configSubject(cluster), data, { timeout: LISTENER_PROBE_MS });
  } catch (err) {
    listening = (err as { code?: string }).code !== ErrorCode.NoResponders;
  }
  await nc.flush();
  return { durable, listening };
}
