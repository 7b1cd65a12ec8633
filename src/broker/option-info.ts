import { z } from 'zod';

/**
 * What the command line, YAML config files and `peerbroker config set` make of an
 * option, kept beside its schema so that an option is spelled in one place.
 */
export interface OptionInfo {
  /** One line for `--help`: what it does, with units. */
  description: string;
  /** Flag and YAML key when not the kebab-case of the option's name; false: library only. */
  flag?: string | false;
  /** Placeholder of the flag's value in `--help` (`host:port`). Default from the type. */
  arg?: string;
  /** The default as `--help` says it, when the schema has none or it reads badly (`4 x capacity`). */
  defaultText?: string;
  /** `peerbroker config set` may change it on every live node (under the same name as the flag). */
  runtime?: boolean;
  /** An object option given as flags of its own (`tls` as `--tls-cert`, `--tls-key`, ...): each field's flag. */
  fields?: Record<string, FieldInfo>;
}

/** The flag of one field of an object option. */
export interface FieldInfo {
  flag: string;
  description: string;
  /** Placeholder in `--help`. Default `file`. */
  arg?: string;
}

/** The OptionInfo of each option's schema. */
export const optionInfo = z.registry<OptionInfo>();

declare const runtimeMark: unique symbol;
/** Marks, in its type only, the schema of an option that `config set` may change, so the runtime keys are a type too. */
export type RuntimeOption = { readonly [runtimeMark]: true };

/** An option's schema with its description and CLI/runtime info attached. */
export function option<T extends z.ZodType, const I extends OptionInfo>(schema: T, info: I): I extends { runtime: true } ? T & RuntimeOption : T {
  const described = schema.describe(info.description) as T;
  optionInfo.add(described, info);
  return described as I extends { runtime: true } ? T & RuntimeOption : T;
}

/** How a value is given on the command line: a number, a switch, a string, a comma-separated list; `structured` ones only in YAML. */
export type OptionKind = 'number' | 'boolean' | 'string' | 'list' | 'structured';

/** One flag (and YAML key) as the command line sees it. */
export interface CliOption {
  /** The option it sets (`maxHops`). */
  key: string;
  /** For a field of an object option (`tls.certFile`), the field. */
  field?: string;
  /** Flag and YAML key, kebab-case (`max-hops`). */
  flag: string;
  kind: OptionKind;
  description: string;
  arg?: string;
  /** For `--help`: the default, if any. */
  defaultText?: string;
  /** A switch that is on by default: given on the command line as `--no-<flag>`. */
  negated?: boolean;
  runtime: boolean;
}

type Def = { type: string; innerType?: z.ZodType; in?: z.ZodType; element?: z.ZodType; options?: z.ZodType[]; defaultValue?: unknown };
const defOf = (s: z.ZodType) => s.def as unknown as Def;

// Past defaults, optionals and transforms to the type the user writes.
function inputType(s: z.ZodType): z.ZodType {
  for (let d = defOf(s); ; d = defOf(s)) {
    if ((d.type === 'default' || d.type === 'optional' || d.type === 'nullable') && d.innerType) s = d.innerType;
    else if (d.type === 'pipe' && d.in) s = d.in;
    else return s;
  }
}

/** How a value of this schema is given on the command line. */
export function kindOf(schema: z.ZodType): OptionKind {
  const s = inputType(schema);
  const d = defOf(s);
  if (d.type === 'number' || d.type === 'int') return 'number';
  if (d.type === 'boolean') return 'boolean';
  if (d.type === 'string' || d.type === 'enum') return 'string';
  // A list of strings, or of names-or-objects (`meters`): the command line gives the names.
  const named = (t: z.ZodType) => kindOf(t) === 'string' || (defOf(t).type === 'union' && defOf(t).options!.some((o) => kindOf(o) === 'string'));
  const isStringList = (t: z.ZodType) => defOf(t).type === 'array' && named(defOf(t).element!);
  if (isStringList(s)) return 'list';
  // `a,b` or [a, b]
  if (d.type === 'union' && d.options!.some(isStringList) && d.options!.every((o) => isStringList(o) || kindOf(o) === 'string')) return 'list';
  return 'structured';
}

/** The default a schema applies, if any. */
export function defaultOf(schema: z.ZodType): unknown {
  const d = defOf(schema);
  if (d.type === 'default') return d.defaultValue;
  return d.type === 'optional' && d.innerType ? defaultOf(d.innerType) : undefined;
}

/** The schema without its default, so that a value left out stays out (runtime changes). */
export function withoutDefault<T extends z.ZodType>(schema: T): z.ZodType {
  const d = defOf(schema);
  return d.type === 'default' && d.innerType ? d.innerType : schema;
}

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The options of an object schema that have a flag and a YAML key, in the schema's order. */
export function cliOptions(shape: Record<string, z.ZodType>): CliOption[] {
  const out: CliOption[] = [];
  for (const [key, schema] of Object.entries(shape)) {
    const info = optionInfo.get(schema);
    if (!info) throw new Error(`option '${key}' has no description: declare it with option()`);
    if (info.flag === false) continue;
    if (info.fields) {
      for (const [field, f] of Object.entries(info.fields)) {
        out.push({ key, field, flag: f.flag, kind: 'string', description: f.description, arg: f.arg ?? 'file', runtime: false });
      }
      continue;
    }
    const kind = kindOf(schema);
    const def = defaultOf(schema);
    const empty = def === undefined || def === false || (typeof def === 'object' && def !== null && Object.keys(def).length === 0);
    const shown = info.defaultText ?? (empty ? undefined : typeof def === 'string' ? JSON.stringify(def) : String(def));
    out.push({
      key,
      flag: info.flag ?? kebab(key),
      kind,
      description: info.description,
      arg: info.arg,
      defaultText: shown,
      negated: kind === 'boolean' && def === true,
      runtime: info.runtime === true,
    });
  }
  return out;
}
