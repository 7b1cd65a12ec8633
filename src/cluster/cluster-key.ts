import * as fs from 'node:fs';
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';
import { ConfigError } from '../errors';

/** The signature algorithm of reports and config changes. */
export const SIGNATURE_ALG = 'hmac-sha256';
/** Bytes of an HMAC-SHA256 signature. */
export const SIGNATURE_BYTES = 32;
/** Shortest secret accepted, bytes: `openssl rand -hex 32` gives 64. */
export const MIN_SECRET_BYTES = 16;
/** Most secrets one key file may hold (current first, then the ones still accepted). */
const MAX_SECRETS = 8;

/** What a signature is for: a report key never verifies a config change, and the reverse. */
export type SigningPurpose = 'report' | 'config';

interface Derived {
  id: string;
  report: Buffer;
  config: Buffer;
}

// Each purpose gets its own key, derived from the secret (HKDF), so a signature
// made for one kind of message is never valid for the other.
function derive(secret: Uint8Array): Derived {
  const sub = (info: string) => Buffer.from(hkdfSync('sha256', secret, 'peerbroker', info, 32));
  return { id: sub('peerbroker key id v1').subarray(0, 8).toString('hex'), report: sub('peerbroker report v1'), config: sub('peerbroker config v1') };
}

/**
 * The shared secret of a cluster: every report and config change is signed with
 * HMAC-SHA256 under a key derived from it, and messages not signed with it are
 * dropped. A key file holds one secret per line (`#` comments and blank lines
 * ignored): the first signs, all of them verify, which allows rotation without a
 * flag day. The secret never leaves this object except through `exportSecrets()`
 * (for the reporter thread); logging it prints only its id.
 */
export class ClusterKey {
  readonly #keys: Derived[];
  readonly #secrets: Uint8Array[];
  /** Public id of the signing secret (derived one-way; safe to log). */
  readonly id: string;

  private constructor(secrets: Uint8Array[]) {
    this.#secrets = secrets.map((s) => new Uint8Array(s));
    this.#keys = this.#secrets.map(derive);
    this.id = this.#keys[0].id;
  }

  /** A key from secrets (the first signs); `field` names the option in errors. */
  static fromSecrets(secrets: ReadonlyArray<string | Uint8Array>, field = 'clusterKey'): ClusterKey {
    const bytes = secrets.map((s) => (typeof s === 'string' ? Buffer.from(s.trim(), 'utf8') : s));
    if (bytes.length === 0) throw new ConfigError(field, 'holds no key');
    if (bytes.length > MAX_SECRETS) throw new ConfigError(field, `holds ${bytes.length} keys; at most ${MAX_SECRETS}`);
    for (const b of bytes) {
      if (b.length < MIN_SECRET_BYTES) {
        throw new ConfigError(field, `a key is shorter than ${MIN_SECRET_BYTES} bytes (make one with 'openssl rand -hex 32')`);
      }
    }
    return new ClusterKey(bytes);
  }

  /** Parses the text of a key file: one secret per line, `#` comments. */
  static parse(text: string, field = 'clusterKey'): ClusterKey {
    const lines = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    return ClusterKey.fromSecrets(lines, field);
  }

  /** Reads a key file; errors name `field` and the path, never the content. */
  static fromFile(file: string, field = 'clusterKeyFile'): ClusterKey {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(field, `cannot read '${file}': ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    return ClusterKey.parse(text, field);
  }

  /** The raw secrets, for the reporter thread (structured clone). Never log them. */
  exportSecrets(): Uint8Array[] {
    return this.#secrets.map((s) => new Uint8Array(s));
  }

  /** Signs `data` for `purpose` with the current secret. */
  sign(purpose: SigningPurpose, data: Uint8Array): Buffer {
    return createHmac('sha256', this.#keys[0][purpose]).update(data).digest();
  }

  /**
   * Checks a signature made with the secret whose id is `keyId` (any accepted one);
   * false when it does not match or no accepted secret has that id.
   */
  verify(purpose: SigningPurpose, data: Uint8Array, signature: Uint8Array, keyId: string): boolean {
    if (signature.length !== SIGNATURE_BYTES) return false;
    for (const k of this.#keys) {
      if (k.id !== keyId) continue;
      const expected = createHmac('sha256', k[purpose]).update(data).digest();
      return timingSafeEqual(expected, signature);
    }
    return false;
  }

  /** True when a secret with this id is accepted. */
  knows(keyId: string): boolean {
    return this.#keys.some((k) => k.id === keyId);
  }

  toJSON(): string {
    return `[cluster key ${this.id}]`;
  }

  toString(): string {
    return this.toJSON();
  }

  [inspect.custom](): string {
    return this.toJSON();
  }
}
