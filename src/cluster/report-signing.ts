import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { PROTO_DIR } from '../proto-path';
import { SIGNATURE_ALG, type ClusterKey } from './cluster-key';
import { decodeReport, MAX_REPORT_BYTES, NOT_WIRE_FORMAT, type LoadReport, type Rejected } from './report-codec';
import { isWireFormat } from './wire-scan';

/** Largest envelope accepted: a report at its limit plus the signature fields. */
export const MAX_SIGNED_REPORT_BYTES = MAX_REPORT_BYTES + 256;

let envelopeType: protobuf.Type | undefined;
function type(): protobuf.Type {
  envelopeType ??= protobuf
    .loadSync(path.join(PROTO_DIR, 'peerbroker', 'v1', 'cluster.proto'))
    .lookupType('peerbroker.v1.SignedReport');
  return envelopeType;
}

interface Envelope {
  report: Uint8Array;
  signature: Uint8Array;
  alg: string;
  keyId: string;
}

/** Wraps an encoded report in a SignedReport signed with `key`. */
export function sealReport(report: Uint8Array, key: ClusterKey): Uint8Array {
  const t = type();
  return t.encode(t.create({ report, signature: key.sign('report', report), alg: SIGNATURE_ALG, keyId: key.id })).finish();
}

// The envelope in `data` (protobuf wire format), or undefined when it is not one (no
// `alg`: a plain report, or bytes that do not decode). Never throws.
function envelope(data: Uint8Array): Envelope | undefined {
  let m: Record<string, unknown>;
  try {
    // A plain view: protobufjs's Buffer reader clamps a cut-off field instead of failing.
    const plain = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    m = type().decode(plain) as unknown as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof m.alg !== 'string' || m.alg === '') return undefined;
  // An absent bytes field decodes as protobufjs's default, an empty Array, not bytes.
  const bytes = (v: unknown) => (v instanceof Uint8Array ? v : new Uint8Array(0));
  return {
    report: bytes(m.report),
    signature: bytes(m.signature),
    alg: m.alg,
    keyId: typeof m.keyId === 'string' ? m.keyId : '',
  };
}

/**
 * Turns a message from a load subject into a checked report, or says why not; never
 * throws. With a cluster key, only a SignedReport whose signature verifies is decoded:
 * anything else is `unsigned` or `bad-signature`, and its content is not read. Without
 * one, an envelope is unwrapped unchecked (a node without the key trusts every
 * publisher anyway) and a plain report is decoded as before.
 */
export function openReport(data: Uint8Array, key: ClusterKey | undefined): LoadReport | Rejected {
  if (data.length === 0 || data.length > MAX_SIGNED_REPORT_BYTES) {
    return { reason: 'malformed', message: `size ${data.length} bytes` };
  }
  // Scanned once: a plain report is not scanned again when decoded.
  const wire = isWireFormat(data);
  const env = wire ? envelope(data) : undefined;
  if (!key) return env ? decodeReport(env.report) : wire ? decodeReport(data, true) : NOT_WIRE_FORMAT;
  if (!env) return { reason: 'unsigned', message: 'not a signed report, and this cluster requires signatures' };
  if (env.alg !== SIGNATURE_ALG) return { reason: 'bad-signature', message: `algorithm '${env.alg.slice(0, 32)}' is not ${SIGNATURE_ALG}` };
  if (!key.knows(env.keyId)) return { reason: 'bad-signature', message: `signed with an unknown key '${env.keyId.slice(0, 32)}'` };
  if (!key.verify('report', env.report, env.signature, env.keyId)) return { reason: 'bad-signature', message: 'signature does not match' };
  return decodeReport(env.report);
}
