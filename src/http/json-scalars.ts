/**
 * Proto3 JSON of scalar fields: what the JSON mapping accepts for each type (integers as
 * numbers or decimal strings, 64-bit ones kept as strings for protobufjs; bytes as base64;
 * NaN and infinities as strings), checked against the type's range.
 */
import type * as protobuf from 'protobufjs';
import { JsonShapeError, shown } from './json-wkt';

/** The bounds of the 32-bit integer types: checked as numbers. */
const INT32_BOUNDS = new Map<string, readonly [number, number]>([
  ['int32', [-(2 ** 31), 2 ** 31 - 1]],
  ['sint32', [-(2 ** 31), 2 ** 31 - 1]],
  ['sfixed32', [-(2 ** 31), 2 ** 31 - 1]],
  ['uint32', [0, 2 ** 32 - 1]],
  ['fixed32', [0, 2 ** 32 - 1]],
]);
/** The bounds of the 64-bit integer types: beyond 2^53 only BigInt can check them. */
const INT64_BOUNDS = new Map<string, readonly [bigint, bigint]>([
  ['int64', [-(2n ** 63n), 2n ** 63n - 1n]],
  ['sint64', [-(2n ** 63n), 2n ** 63n - 1n]],
  ['sfixed64', [-(2n ** 63n), 2n ** 63n - 1n]],
  ['uint64', [0n, 2n ** 64n - 1n]],
  ['fixed64', [0n, 2n ** 64n - 1n]],
]);
const INTEGER_TEXT = /^-?\d{1,20}$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** A scalar field's JSON value as protobufjs's fromObject takes it (64-bit as decimal strings). */
export function readScalarField(f: protobuf.Field, v: unknown, path: string): unknown {
  const type = f.type;
  if (type === 'string') {
    if (typeof v !== 'string') throw new JsonShapeError(path, `expected a string, got ${shown(v)}`);
    return v;
  }
  if (type === 'bool') {
    if (typeof v !== 'boolean') throw new JsonShapeError(path, `expected true or false, got ${shown(v)}`);
    return v;
  }
  if (type === 'bytes') {
    if (typeof v !== 'string' || !BASE64.test(v)) throw new JsonShapeError(path, `expected base64 text, got ${shown(v)}`);
    return Buffer.from(v, 'base64');
  }
  if (type === 'double' || type === 'float') {
    if (typeof v === 'number') return v;
    if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return Number(v);
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
    throw new JsonShapeError(path, `expected a number, got ${shown(v)}`);
  }
  return readInteger(type, v, path);
}

/** An integer field: a number or a decimal string, within its type's range; 64-bit ones as decimal strings. */
function readInteger(type: string, v: unknown, path: string): unknown {
  const isNumber = typeof v === 'number' && Number.isInteger(v);
  if (!isNumber && !(typeof v === 'string' && INTEGER_TEXT.test(v))) {
    throw new JsonShapeError(path, `expected an integer (a number or a decimal string), got ${shown(v)}`);
  }
  const n = isNumber ? (v as number) : Number(v);
  const small = INT32_BOUNDS.get(type);
  if (small) {
    // Past 2^53 a number is no longer exact, but it is far out of range all the same.
    if (n < small[0] || n > small[1]) throw new JsonShapeError(path, `${String(v)} is out of range for ${type}`);
    return n;
  }
  const large = INT64_BOUNDS.get(type);
  if (!large) throw new JsonShapeError(path, `${type} is not an integer type`);
  // Exact as a number: only the sign can be out of range.
  if (Number.isSafeInteger(n)) {
    const text = isNumber ? String(n) : (v as string);
    if (n < 0 && large[0] === 0n) throw new JsonShapeError(path, `${text} is out of range for ${type}`);
    return text;
  }
  // A number past 2^53 is written with an exponent by String(): BigInt gives its digits.
  const text = isNumber ? BigInt(n).toString() : (v as string);
  const b = BigInt(text);
  if (b < large[0] || b > large[1]) throw new JsonShapeError(path, `${text} is out of range for ${type}`);
  return text;
}

/** A decoded scalar as proto3 JSON: 64-bit integers as decimal strings, bytes as base64, NaN and infinities as strings. */
export function writeScalar(f: protobuf.Field, v: unknown): unknown {
  const type = f.type;
  if (INT64_BOUNDS.has(type)) return v === undefined || v === null ? '0' : String(v);
  if (type === 'bytes') return Buffer.from((v as Uint8Array | undefined) ?? []).toString('base64');
  if ((type === 'double' || type === 'float') && typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return v;
}
