import * as fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseBrokerOptions, toConfigError, type BrokerOptions } from '../broker';
import { ConfigError } from '../errors';
import { natsAuthFrom, SECURITY_FLAG_OF, securityFileShape, tlsFrom, type SecurityConfig } from './security-flags';

/** Options of `peerbroker start`, by their flag names (also the keys of a YAML config file). */
export interface StartConfig extends SecurityConfig {
  'node-id': string;
  listen?: string;
  advertise?: string;
  nats?: string | string[];
  cluster?: string;
  capacity?: number;
  'max-queue'?: number;
  threshold?: number;
  margin?: number;
  'period-ms'?: number;
  'offline-after'?: number;
  'max-hops'?: number;
  'peer-choice'?: string;
  meters?: string[];
  /** Services hosted here, comma-separated or a list. */
  services?: string | string[];
  'forward-legacy'?: boolean;
  takeover?: boolean;
  'takeover-on-leave'?: boolean;
  'on-adopt'?: string;
  'on-release'?: string;
  'drain-grace-ms'?: number;
  'max-loop-delay-ms'?: number;
  sessions?: unknown[];
  dedicated?: Record<string, string[]>;
  /** Path of a module exporting `register(broker)`. */
  module?: string;
  'log-level'?: string;
}

const FLAG_OF: Record<string, string> = {
  nodeId: 'node-id',
  maxQueue: 'max-queue',
  periodMs: 'period-ms',
  offlineAfterPeriods: 'offline-after',
  maxHops: 'max-hops',
  peerChoice: 'peer-choice',
  forwardLegacy: 'forward-legacy',
  ...SECURITY_FLAG_OF,
  takeoverOnLeave: 'takeover-on-leave',
  onAdopt: 'on-adopt',
  onRelease: 'on-release',
  drainGraceMs: 'drain-grace-ms',
  maxLoopDelayMs: 'max-loop-delay-ms',
};

const fileSchema = z
  .object({
    'node-id': z.string(),
    listen: z.string(),
    advertise: z.string(),
    nats: z.union([z.string(), z.array(z.string())]),
    cluster: z.string(),
    capacity: z.number(),
    'max-queue': z.number(),
    threshold: z.number(),
    margin: z.number(),
    'period-ms': z.number(),
    'offline-after': z.number(),
    'max-hops': z.number(),
    'peer-choice': z.string(),
    meters: z.array(z.string()),
    services: z.union([z.string(), z.array(z.string())]),
    'forward-legacy': z.boolean(),
    takeover: z.boolean(),
    'takeover-on-leave': z.boolean(),
    'on-adopt': z.string(),
    'on-release': z.string(),
    'drain-grace-ms': z.number(),
    'max-loop-delay-ms': z.number(),
    sessions: z.array(z.unknown()),
    dedicated: z.record(z.string(), z.array(z.string())),
    module: z.string(),
    ...securityFileShape,
    'log-level': z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  })
  .partial()
  .strict();

/** Reads a YAML config file; unknown keys and wrong types are errors naming the key. */
export function readConfigFile(file: string): Partial<StartConfig> {
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
  const r = fileSchema.safeParse(data);
  if (!r.success) throw toConfigError(r.error);
  return r.data;
}

/** Flags win over the file; the result is validated as broker options, errors name the flag. */
export function toBrokerOptions(config: Partial<StartConfig>): BrokerOptions & { module?: string; logLevel?: string } {
  if (!config['node-id']) throw new ConfigError('node-id', 'is required');
  const options: BrokerOptions = {
    nodeId: config['node-id'],
    listen: config.listen,
    advertise: config.advertise,
    nats: config.nats,
    cluster: config.cluster,
    capacity: config.capacity,
    maxQueue: config['max-queue'],
    threshold: config.threshold,
    margin: config.margin,
    periodMs: config['period-ms'],
    offlineAfterPeriods: config['offline-after'],
    maxHops: config['max-hops'],
    peerChoice: config['peer-choice'],
    meters: config.meters,
    services: typeof config.services === 'string' ? config.services.split(',').map((x) => x.trim()).filter(Boolean) : config.services,
    forwardLegacy: config['forward-legacy'],
    takeover: config.takeover,
    takeoverOnLeave: config['takeover-on-leave'],
    onAdopt: config['on-adopt'],
    onRelease: config['on-release'],
    drainGraceMs: config['drain-grace-ms'],
    maxLoopDelayMs: config['max-loop-delay-ms'],
    sessions: config.sessions as BrokerOptions['sessions'],
    dedicated: config.dedicated,
    tls: tlsFrom(config),
    natsAuth: natsAuthFrom(config),
    clusterKeyFile: config['cluster-key-file'],
  };
  for (const k of Object.keys(options) as Array<keyof BrokerOptions>) if (options[k] === undefined) delete options[k];
  try {
    parseBrokerOptions(options);
  } catch (err) {
    if (err instanceof ConfigError) throw err.renamed(FLAG_OF[err.field] ?? err.field);
    throw err;
  }
  return { ...options, module: config.module, logLevel: config['log-level'] };
}
