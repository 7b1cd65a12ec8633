import { status, type MethodDefinition } from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import * as descriptor from 'protobufjs/ext/descriptor';
import { HttpCallError } from './connect-errors';
import { readScalarField, writeScalar } from './json-scalars';
import { jsonName, JsonShapeError, protoName, shown, wellKnownTypes, type WellKnown } from './json-wkt';

/**
 * One method's messages over HTTP: proto3 JSON (protobufjs's reflection, made strict) and
 * binary. A request becomes exactly the object the gRPC path hands the handler: it is
 * encoded and then decoded by the method's own `requestDeserialize`, so whatever
 * proto-loader options the service was loaded with hold over HTTP too.
 */
export interface MethodCodec {
  /** Proto3 JSON text → the handler's request object; bad input throws an INVALID_ARGUMENT HttpCallError naming the field. */
  requestFromJson(text: string): unknown;
  /** Protobuf bytes → the handler's request object. */
  requestFromBinary(bytes: Buffer): unknown;
  /** The handler's answer → proto3 JSON text. */
  responseToJson(value: unknown): string;
  /** The handler's answer → protobuf bytes. */
  responseToBinary(value: unknown): Buffer;
  /** False when the definition carries no descriptor (not loaded with proto-loader): binary only. */
  readonly json: boolean;
  /** The method's path. */
  readonly path: string;
}

/** The refusal of JSON for a method whose definition carries no descriptor (415). */
export function jsonUnavailable(codec: MethodCodec): HttpCallError {
  return new HttpCallError(status.UNIMPLEMENTED, `peerbroker: '${codec.path}' was not loaded with @grpc/proto-loader, so it has no JSON form here; send application/proto`, 415);
}

type Method = MethodDefinition<unknown, unknown>;
type Obj = Record<string, unknown>;
type FileProtos = readonly Buffer[];

const MAX_DEPTH = 64;

// One protobufjs Root per loaded package definition: every method of it shares the array.
const roots = new WeakMap<FileProtos, protobuf.Root>();

/** The codec of `method`: JSON needs the descriptors proto-loader puts in the definition. */
export function methodCodec(method: Method): MethodCodec {
  const binary = {
    path: method.path,
    requestFromBinary: (bytes: Buffer) => method.requestDeserialize(bytes),
    responseToBinary: (value: unknown) => method.responseSerialize(value),
  };
  const types = typesOf(method);
  if (!types) {
    const codec: MethodCodec = {
      ...binary,
      json: false,
      requestFromJson: () => {
        throw jsonUnavailable(codec);
      },
      responseToJson: () => {
        throw jsonUnavailable(codec);
      },
    };
    return codec;
  }
  const { req, res } = types;
  return {
    ...binary,
    json: true,
    requestFromJson(text) {
      let json: unknown;
      try {
        json = text.length === 0 ? {} : JSON.parse(text);
      } catch (err) {
        throw new HttpCallError(status.INVALID_ARGUMENT, `peerbroker: the body is not JSON: ${(err as Error).message}`);
      }
      let obj: Obj;
      try {
        obj = readMessage(req, json, 0);
      } catch (err) {
        if (!(err instanceof JsonShapeError)) throw err;
        throw new HttpCallError(status.INVALID_ARGUMENT, `peerbroker: invalid ${req.fullName.slice(1)}: ${err.message}`);
      }
      return method.requestDeserialize(Buffer.from(req.encode(req.fromObject(obj)).finish()));
    },
    responseToJson(value) {
      // fromObject is what the method's own serializer starts with: the same reading of the
      // handler's object, without encoding and decoding it again.
      return JSON.stringify(writeMessage(res, res.fromObject(value as Obj) as Decoded));
    },
  };
}

// The method's message types, found by its path in the Root of its files.
function typesOf(method: Method): { req: protobuf.Type; res: protobuf.Type } | undefined {
  const files = (method as { requestType?: { fileDescriptorProtos?: FileProtos } }).requestType?.fileDescriptorProtos;
  const parts = /^\/(.+)\/([^/]+)$/.exec(method.path);
  if (!files || !parts) return undefined;
  let root = roots.get(files);
  if (!root) {
    root = rootOf(files);
    roots.set(files, root);
  }
  const service = root.lookup(parts[1]);
  const m = service instanceof protobuf.Service ? service.methods[parts[2]] : undefined;
  if (!m?.resolvedRequestType || !m.resolvedResponseType) return undefined;
  return { req: m.resolvedRequestType, res: m.resolvedResponseType };
}

/**
 * A protobufjs Root from proto-loader's file descriptors. protobufjs turns a map field's
 * descriptor back into a repeated entry message (and marks the wrong type), so map fields
 * are rebuilt from the entry types the descriptors flag.
 */
function rootOf(files: FileProtos): protobuf.Root {
  const decoded = files.map((f) => descriptor.FileDescriptorProto.decode(f));
  const root = (protobuf.Root as unknown as { fromDescriptor(d: unknown): protobuf.Root }).fromDescriptor({ file: decoded });
  const entries = new Set<string>();
  const walk = (scope: string, types: Array<{ name: string; nestedType?: unknown[]; options?: { mapEntry?: boolean } }> | undefined) => {
    for (const t of types ?? []) {
      const full = `${scope}.${t.name}`;
      if (t.options?.mapEntry) entries.add(full);
      walk(full, t.nestedType as typeof types);
    }
  };
  for (const f of decoded as unknown as Array<{ package?: string; messageType?: [] }>) walk(f.package ? `.${f.package}` : '', f.messageType);
  root.resolveAll();
  const fix = (ns: protobuf.NamespaceBase) => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type) {
        for (const f of [...nested.fieldsArray]) {
          const entry = f.resolvedType;
          if (!f.repeated || !(entry instanceof protobuf.Type) || !entries.has(entry.fullName)) continue;
          const key = entry.fields.key;
          const value = entry.fields.value;
          nested.remove(f);
          const map = new protobuf.MapField(f.name, f.id, key.type, value.resolvedType ? value.resolvedType.fullName : value.type);
          nested.add(map);
          // resolveAll() runs once per namespace: the new field is resolved here.
          map.resolve();
        }
      }
      if (nested instanceof protobuf.Namespace) fix(nested);
    }
  };
  fix(root);
  return root;
}

type Decoded = protobuf.Message & Obj;

const wkt: Map<string, WellKnown> = wellKnownTypes(readScalarField, writeScalar);

// A field found by its JSON name or its proto name (snake_case).
const byJsonName = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();
function fieldNamed(type: protobuf.Type, key: string): protobuf.Field | undefined {
  let m = byJsonName.get(type);
  if (!m) {
    m = new Map();
    for (const f of type.fieldsArray) {
      m.set(f.name, f);
      m.set(jsonName(f.name), f);
      m.set(protoName(f.name), f);
    }
    byJsonName.set(type, m);
  }
  return m.get(key);
}

/**
 * Reads `json` as a message of `type`. Paths are only for errors: a JsonShapeError names the
 * path inside the value it was found in, and each enclosing level puts its member in front.
 */
function readMessage(type: protobuf.Type, json: unknown, depth: number): Obj {
  if (depth > MAX_DEPTH) throw new JsonShapeError('', `nested deeper than ${MAX_DEPTH}`);
  const special = wkt.get(type.fullName.slice(1));
  if (special) return special.read(json, '', type);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new JsonShapeError('', `expected an object, got ${shown(json)}`);
  const out: Obj = {};
  // Made only for a message with a oneof member set.
  let oneofs: Map<string, string> | undefined;
  for (const key of Object.keys(json)) {
    const v = (json as Obj)[key];
    const f = fieldNamed(type, key);
    if (!f) {
      const known = type.fieldsArray.map((x) => jsonName(x.name)).join(', ');
      throw new JsonShapeError('', `unknown field '${key}' (${type.fullName.slice(1)} has: ${known || 'no fields'})`);
    }
    // null means "the default", except where a google.protobuf.Value says null itself.
    if (v === null && f.resolvedType?.fullName !== '.google.protobuf.Value') continue;
    const group = f.partOf;
    if (group) {
      oneofs ??= new Map();
      const other = oneofs.get(group.name);
      if (other !== undefined && other !== key) throw new JsonShapeError('', `'${other}' and '${key}' are both set, but only one of oneof '${group.name}' may be`);
      oneofs.set(group.name, key);
    }
    try {
      out[f.name] = readField(f, v, depth);
    } catch (err) {
      throw within(err, key);
    }
  }
  return out;
}

function within(err: unknown, segment: string): unknown {
  return err instanceof JsonShapeError ? err.within(segment) : err;
}

function readField(f: protobuf.Field, v: unknown, depth: number): unknown {
  if (f instanceof protobuf.MapField) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new JsonShapeError('', `expected an object (a map), got ${shown(v)}`);
    // No prototype: a key such as `__proto__` is a key like any other.
    const out: Obj = Object.create(null);
    for (const k of Object.keys(v)) {
      try {
        checkMapKey(f.keyType, k);
        out[k] = readOne(f, (v as Obj)[k], depth);
      } catch (err) {
        throw within(err, k);
      }
    }
    return out;
  }
  if (f.repeated) {
    if (!Array.isArray(v)) throw new JsonShapeError('', `expected an array, got ${shown(v)}`);
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) {
      try {
        out[i] = readOne(f, v[i], depth);
      } catch (err) {
        throw within(err, `[${i}]`);
      }
    }
    return out;
  }
  return readOne(f, v, depth);
}

function readOne(f: protobuf.Field, v: unknown, depth: number): unknown {
  const t = f.resolvedType;
  if (t instanceof protobuf.Type) return readMessage(t, v, depth + 1);
  if (t instanceof protobuf.Enum) {
    if (typeof v === 'string' && Object.prototype.hasOwnProperty.call(t.values, v)) return t.values[v];
    // Enums are 32-bit: an unknown number within that range is kept, as proto3 does.
    if (typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) return v;
    throw new JsonShapeError('', `expected one of ${Object.keys(t.values).join(', ')}, got ${shown(v)}`);
  }
  return readScalarField(f, v, '');
}

function checkMapKey(keyType: string, k: string): void {
  if (keyType === 'bool' ? k !== 'true' && k !== 'false' : keyType !== 'string' && !/^-?\d+$/.test(k)) {
    throw new JsonShapeError('', `map key '${k}' is not a ${keyType}`);
  }
}

/** How one field of a type is written: worked out once per type, not per call. */
interface FieldPlan {
  name: string;
  json: string;
  /** Left out when unset: oneof members (and proto3 `optional`) and message fields. */
  omitUnset: boolean;
  shape: 'map' | 'list' | 'one';
  write: (v: unknown) => unknown;
}
interface TypePlan {
  special?: WellKnown;
  type: protobuf.Type;
  fields: FieldPlan[];
}
const plans = new WeakMap<protobuf.Type, TypePlan>();

function planOf(type: protobuf.Type): TypePlan {
  let plan = plans.get(type);
  if (plan) return plan;
  plan = { special: wkt.get(type.fullName.slice(1)), type, fields: [] };
  // Set before the fields, so a type that contains itself finds its plan.
  plans.set(type, plan);
  for (const f of type.fieldsArray) {
    const t = f.resolvedType;
    const write =
      t instanceof protobuf.Type
        ? (v: unknown) => writeMessage(t, v as Decoded)
        : t instanceof protobuf.Enum
          ? (v: unknown) => t.valuesById[v as number] ?? v
          : (v: unknown) => writeScalar(f, v);
    plan.fields.push({
      name: f.name,
      json: jsonName(f.name),
      omitUnset: f.partOf !== null || (t instanceof protobuf.Type && !f.repeated && !(f instanceof protobuf.MapField)),
      shape: f instanceof protobuf.MapField ? 'map' : f.repeated ? 'list' : 'one',
      write,
    });
  }
  return plan;
}

function writeMessage(type: protobuf.Type, msg: Decoded): unknown {
  const plan = planOf(type);
  if (plan.special) return plan.special.write(msg, type);
  const out: Obj = {};
  const fields = plan.fields;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    const v = msg[f.name];
    // Every scalar, list and map field is written, defaults too; unset messages and oneof members are left out.
    if (f.omitUnset && (v === null || v === undefined || !Object.prototype.hasOwnProperty.call(msg, f.name))) continue;
    if (f.shape === 'one') out[f.json] = f.write(v);
    else if (f.shape === 'list') out[f.json] = ((v as unknown[] | undefined) ?? []).map(f.write);
    else {
      // No prototype: a key such as `__proto__` is a key like any other.
      const m: Obj = Object.create(null);
      for (const k of Object.keys((v as Obj | undefined) ?? {})) m[k] = f.write((v as Obj)[k]);
      out[f.json] = m;
    }
  }
  return out;
}
