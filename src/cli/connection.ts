import { brokerOptionsSchema, toConfigError } from '../broker';
import { ClusterKey, natsConnectionOptions, type NatsAuthOptions } from '../cluster';
import { flagNamed, START_OPTIONS } from './start-config';
import { natsAuthFrom, warnOfSecrets } from './security-flags';

/** Where `peerbroker status` and `config` talk to, and how. */
export interface Connection {
  nats: string[];
  cluster: string;
  /** How to authenticate to NATS. Default none. */
  natsAuth?: NatsAuthOptions;
  /** Signs config changes and checks reports and the kept config. Default none. */
  clusterKey?: ClusterKey;
}

const connectionSchema = brokerOptionsSchema.pick({ nats: true, cluster: true, natsAuth: true, clusterKeyFile: true });

/** The flags `status` and `config` share with `start` (same names, help and checks): NATS servers and auth, cluster, cluster key. */
export const CONNECTION_OPTIONS = START_OPTIONS.filter((o) => o.key in connectionSchema.shape);

const asFlag = (flag: string) => `--${flag}`;

/** The connection the flags (by flag name) describe, checked; files are read now; errors name the flag. */
export function connectionFrom(given: Record<string, unknown>): Connection {
  warnOfSecrets(given);
  const r = connectionSchema.safeParse({ nats: given.nats, cluster: given.cluster, natsAuth: natsAuthFrom(given), clusterKeyFile: given['cluster-key-file'] });
  if (!r.success) throw flagNamed(toConfigError(r.error), asFlag);
  const { nats, cluster, natsAuth, clusterKeyFile } = r.data;
  try {
    natsConnectionOptions(natsAuth);
    return { nats, cluster, natsAuth, clusterKey: clusterKeyFile !== undefined ? ClusterKey.fromFile(clusterKeyFile) : undefined };
  } catch (err) {
    throw flagNamed(err, asFlag);
  }
}
