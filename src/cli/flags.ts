import type { Command } from 'commander';
import type { CliOption } from '../broker';
import { ConfigError } from '../errors';

const DEFAULT_ARG: Record<CliOption['kind'], string> = { number: 'n', string: 'value', list: 'list', boolean: '', structured: '' };

/** Commander's attribute name of each flag added by `addFlags`, by flag. */
const attributes = new WeakMap<Command, Map<string, CliOption>>();

/**
 * Adds a flag per option to `cmd`, with the help text from its description and
 * default. Switches on by default become `--no-<flag>`; structured options (rules)
 * are left to YAML files. Values are checked later, by the options schema.
 */
export function addFlags(cmd: Command, options: readonly CliOption[], required: readonly string[] = []): Command {
  const byAttribute = attributes.get(cmd) ?? new Map<string, CliOption>();
  for (const o of options) {
    if (o.kind === 'structured') continue;
    // A switch on by default is offered as its opposite: descriptions of switches are verb phrases.
    const help = o.negated ? `do not ${o.description}` : o.defaultText !== undefined ? `${o.description} (default ${o.defaultText})` : o.description;
    const spec = o.kind === 'boolean' ? `--${o.negated ? 'no-' : ''}${o.flag}` : `--${o.flag} <${o.arg ?? DEFAULT_ARG[o.kind]}>`;
    const opt = cmd.createOption(spec, help);
    if (required.includes(o.flag)) opt.makeOptionMandatory();
    cmd.addOption(opt);
    byAttribute.set(opt.attributeName(), o);
  }
  attributes.set(cmd, byAttribute);
  return cmd;
}

/**
 * The flags given to `cmd`, by flag name (`{ 'max-hops': 3 }`). Numbers are checked
 * for shape here (the error names the flag); ranges and the rest by the options schema.
 */
export function givenFlags(cmd: Command): Record<string, unknown> {
  const parsed = cmd.opts();
  const out: Record<string, unknown> = {};
  for (const [attribute, o] of attributes.get(cmd) ?? []) {
    const v = parsed[attribute];
    // commander sets a `--no-x` switch to true when it is not given: only false was said.
    if (v === undefined || (o.negated && v !== false)) continue;
    if (o.kind === 'number') {
      const n = Number(v);
      if (String(v).trim() === '' || !Number.isFinite(n)) throw new ConfigError(`--${o.flag}`, `must be a number, got '${v}'`);
      out[o.flag] = n;
    } else {
      out[o.flag] = v;
    }
  }
  return out;
}
