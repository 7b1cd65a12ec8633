import { randomBytes } from 'node:crypto';
import type { KV, NatsConnection, Subscription } from 'nats';
import { z } from 'zod';

/** Values that `peerboker config set` can change on every live node. */
export interface RuntimeValues {
  threshold?: number;
  margin?: number;
  periodMs?: number;
  maxHops?: number;
  peerChoice?: string;
  forwardLegacy?: boolean;
  sessions?: unknown[];
  dedicated?: Record<string, string[]>;
}

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

/** Parses a config message; throws with a short reason. */
export function decodeConfigMessage(data: Uint8Array): ConfigMessage {
  if (data.length > MAX_CONFIG_BYTES) throw new Error(`config message of ${data.length} bytes is too large`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    throw new Error('config message is not JSON');
  }
  const r = messageSchema.safeParse(json);
  if (!r.success) throw new Error(`config message is malformed: ${r.error.issues[0].message}`);
  return r.data as ConfigMessage;
}

/** A new message carrying `values`. */
export function newConfigMessage(values: RuntimeValues): ConfigMessage {
  return { version: `${Date.now()}-${randomBytes(4).toString('hex')}`, setAt: Date.now(), values };
}

/**
 * Watches the cluster's config: the JetStream key-value bucket (current value at
 * start, then every change) and the plain config subject (for servers without
 * JetStream). Each version is delivered once.
 */
export class ConfigWatcher {
  private sub?: Subscription;
  private kv?: KV;
  private stopped = false;
  private lastVersion = '';
  /** True when the bucket could be used (JetStream on). */
  durable = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly cluster: string,
    private readonly onConfig: (m: ConfigMessage) => void,
    private readonly onError: (reason: string) => void,
  ) {}

  /** Subscribes to the config subject; the bucket is opened in the background (it may take a while, or never come). */
  async start(): Promise<void> {
    this.sub = this.nc.subscribe(configSubject(this.cluster), { callback: (err, msg) => !err && this.deliver(msg.data) });
    void this.watchBucket();
  }

  private async watchBucket(): Promise<void> {
    try {
      this.kv = await this.nc.jetstream({ timeout: 2_000 }).views.kv(configBucket(this.cluster), { history: 5 });
      this.durable = true;
    } catch (err) {
      if (!this.stopped) this.onError(`JetStream key-value store unavailable, config changes are not kept: ${(err as Error).message}`);
      return;
    }
    if (this.stopped) return;
    const watch = await this.kv.watch({ key: KEY });
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
      m = decodeConfigMessage(data);
    } catch (err) {
      this.onError((err as Error).message);
      return;
    }
    if (m.version === this.lastVersion) return;
    this.lastVersion = m.version;
    this.onConfig(m);
  }

  stop(): void {
    this.stopped = true;
    this.sub?.unsubscribe();
    this.stopWatch();
  }
}

/** Reads the current config from the bucket; undefined when none was set or JetStream is off. */
export async function readCurrentConfig(nc: NatsConnection, cluster: string): Promise<ConfigMessage | undefined> {
  try {
    const kv = await nc.jetstream({ timeout: 2_000 }).views.kv(configBucket(cluster), { history: 5 });
    const e = await kv.get(KEY);
    return e && e.operation === 'PUT' ? decodeConfigMessage(e.value) : undefined;
  } catch {
    return undefined;
  }
}

/** Stores `m` in the bucket (when JetStream is on) and publishes it on the config subject. */
export async function publishConfig(nc: NatsConnection, cluster: string, m: ConfigMessage): Promise<{ durable: boolean }> {
  const data = Buffer.from(JSON.stringify(m));
  let durable = false;
  try {
    const kv = await nc.jetstream({ timeout: 2_000 }).views.kv(configBucket(cluster), { history: 5 });
    await kv.put(KEY, data);
    durable = true;
  } catch {
    // No JetStream: live nodes still get it on the subject.
  }
  nc.publish(configSubject(cluster), data);
  await nc.flush();
  return { durable };
}
