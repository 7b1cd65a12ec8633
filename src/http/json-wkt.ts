import * as protobuf from 'protobufjs';

/**
 * The well-known types whose proto3 JSON form is not an object of their fields
 * (Timestamp as RFC 3339, Duration as "1.5s", wrappers as their value, Struct as any
 * JSON object, FieldMask as "a.b,c"). `read` turns their JSON into what protobufjs's
 * `fromObject` takes; `write` turns a decoded message into JSON.
 */
export interface WellKnown {
  read(json: unknown, path: string, type: protobuf.Type): Record<string, unknown>;
  write(message: protobuf.Message & Record<string, unknown>, type: protobuf.Type): unknown;
}

/** A JSON value that does not fit the field; the message names the field's path. */
export class JsonShapeError extends Error {
  constructor(
    private path: string,
    private readonly what: string,
  ) {
    super(shapeText(path, what));
    this.name = 'JsonShapeError';
  }

  /** The same error seen from the enclosing value: `segment` (a field or map key, or `[i]`) goes in front of its path. */
  within(segment: string): this {
    this.path = this.path === '' ? segment : this.path.startsWith('[') ? segment + this.path : `${segment}.${this.path}`;
    this.message = shapeText(this.path, this.what);
    return this;
  }
}

function shapeText(path: string, what: string): string {
  return `${path ? `'${path}': ` : ''}${what}`;
}

/** `path` and one more member: `a.b`, or `b` at the top. */
function member(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** lowerCamelCase of a proto name (`first_name` → `firstName`), as the JSON mapping names fields. */
export function jsonName(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The proto name of a lowerCamelCase one (`firstName` → `first_name`). */
export function protoName(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** How a value was written, for messages: `"abc"`, `12`, `an object`. */
export function shown(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

const MAX_SECONDS = 315_576_000_000; // 10 000 years, the range protobuf allows both types
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i;
const DURATION = /^(-)?(\d{1,12})(?:\.(\d{1,9}))?s$/;

function nanosOf(fraction: string | undefined): number {
  return fraction ? Number(fraction.padEnd(9, '0')) : 0;
}

// 0, 3, 6 or 9 digits, as the JSON mapping asks.
function fractionOf(nanos: number): string {
  if (nanos === 0) return '';
  const s = String(nanos).padStart(9, '0');
  return '.' + (s.endsWith('000000') ? s.slice(0, 3) : s.endsWith('000') ? s.slice(0, 6) : s);
}

function longNumber(v: unknown): number {
  return typeof v === 'object' && v !== null ? Number(String(v)) : Number(v ?? 0);
}

const timestamp: WellKnown = {
  read(json, path) {
    const m = typeof json === 'string' ? TIMESTAMP.exec(json) : null;
    const ms = m ? Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[8].toUpperCase()}`) : NaN;
    if (!m || Number.isNaN(ms)) throw new JsonShapeError(path, `expected an RFC 3339 time such as "2026-01-02T15:04:05Z", got ${shown(json)}`);
    return { seconds: String(Math.floor(ms / 1000)), nanos: nanosOf(m[7]) };
  },
  write(msg) {
    const seconds = longNumber(msg.seconds);
    const iso = new Date(seconds * 1000).toISOString();
    return `${iso.slice(0, 19)}${fractionOf(Number(msg.nanos ?? 0))}Z`;
  },
};

const duration: WellKnown = {
  read(json, path) {
    const m = typeof json === 'string' ? DURATION.exec(json) : null;
    if (!m || Number(m[2]) > MAX_SECONDS) throw new JsonShapeError(path, `expected a duration such as "1.5s", got ${shown(json)}`);
    const sign = m[1] ? -1 : 1;
    return { seconds: String(sign * Number(m[2])), nanos: sign * nanosOf(m[3]) };
  },
  write(msg) {
    const seconds = longNumber(msg.seconds);
    const nanos = Number(msg.nanos ?? 0);
    const negative = seconds < 0 || nanos < 0;
    return `${negative ? '-' : ''}${Math.abs(seconds)}${fractionOf(Math.abs(nanos))}s`;
  },
};

/** A wrapper (`google.protobuf.Int64Value`, ...): JSON is its `value` alone, read and written as that field. */
function wrapper(readValue: (field: protobuf.Field, json: unknown, path: string) => unknown, writeValue: (field: protobuf.Field, v: unknown) => unknown): WellKnown {
  return {
    read: (json, path, type) => ({ value: readValue(type.fields.value, json, path) }),
    write: (msg, type) => writeValue(type.fields.value, msg.value),
  };
}

function readValue(json: unknown, path: string): Record<string, unknown> {
  if (json === null) return { nullValue: 0 };
  switch (typeof json) {
    case 'number':
      return { numberValue: json };
    case 'string':
      return { stringValue: json };
    case 'boolean':
      return { boolValue: json };
    case 'object':
      return Array.isArray(json) ? { listValue: readList(json, path) } : { structValue: readStruct(json, path) };
    default:
      throw new JsonShapeError(path, `expected a JSON value, got ${shown(json)}`);
  }
}
function readList(json: unknown, path: string): Record<string, unknown> {
  if (!Array.isArray(json)) throw new JsonShapeError(path, `expected an array, got ${shown(json)}`);
  return { values: json.map((v, i) => readValue(v, `${path}[${i}]`)) };
}
function readStruct(json: unknown, path: string): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new JsonShapeError(path, `expected an object, got ${shown(json)}`);
  // No prototype: a key such as `__proto__` is a key like any other.
  const fields: Record<string, unknown> = Object.create(null);
  for (const [k, v] of Object.entries(json)) fields[k] = readValue(v, member(path, k));
  return { fields };
}
type Decoded = Record<string, unknown>;
// A decoded Value says which member is set in its `kind` (protobufjs's oneof getter).
function writeValue(v: Decoded | null | undefined): unknown {
  switch (v?.kind) {
    case 'numberValue':
    case 'stringValue':
    case 'boolValue':
      return v[v.kind as string];
    case 'structValue':
      return writeStruct(v.structValue as Decoded);
    case 'listValue':
      return writeList(v.listValue as Decoded);
    default:
      return null;
  }
}
function writeList(l: Decoded): unknown[] {
  return ((l.values as Decoded[] | undefined) ?? []).map(writeValue);
}
function writeStruct(s: Decoded): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const [k, v] of Object.entries((s.fields as Record<string, Decoded> | undefined) ?? {})) out[k] = writeValue(v);
  return out;
}

/** The well-known types by full name, given how the codec reads and writes a scalar field. */
export function wellKnownTypes(
  readScalar: (field: protobuf.Field, json: unknown, path: string) => unknown,
  writeScalar: (field: protobuf.Field, v: unknown) => unknown,
): Map<string, WellKnown> {
  const w = wrapper(readScalar, writeScalar);
  const unsupported = (name: string): WellKnown => ({
    read: (_json, path) => {
      throw new JsonShapeError(path, `google.protobuf.${name} is not served over HTTP/JSON; call this method over gRPC or with application/proto`);
    },
    write: () => {
      throw new Error(`google.protobuf.${name} cannot be written as JSON here`);
    },
  });
  const map = new Map<string, WellKnown>([
    ['google.protobuf.Timestamp', timestamp],
    ['google.protobuf.Duration', duration],
    ['google.protobuf.Struct', { read: (j, p) => readStruct(j, p), write: (m) => writeStruct(m) }],
    ['google.protobuf.ListValue', { read: (j, p) => readList(j, p), write: (m) => writeList(m) }],
    ['google.protobuf.Value', { read: (j, p) => readValue(j, p), write: (m) => writeValue(m) }],
    [
      'google.protobuf.FieldMask',
      {
        read: (j, p) => {
          if (typeof j !== 'string') throw new JsonShapeError(p, `expected paths such as "user.displayName,photo", got ${shown(j)}`);
          return { paths: j === '' ? [] : j.split(',').map(protoName) };
        },
        write: (m) => ((m.paths as string[] | undefined) ?? []).map(jsonName).join(','),
      },
    ],
    ['google.protobuf.Any', unsupported('Any')],
  ]);
  for (const n of ['Double', 'Float', 'Int64', 'UInt64', 'Int32', 'UInt32', 'Bool', 'String', 'Bytes']) map.set(`google.protobuf.${n}Value`, w);
  return map;
}
