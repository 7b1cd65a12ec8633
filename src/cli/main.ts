#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { ConfigError } from '../errors';
import { runConfigGet, runConfigSet } from './config-command';
import { CONNECTION_OPTIONS, connectionFrom } from './connection';
import { addFlags, givenFlags } from './flags';
import { runGenTypes } from './gen-types-command';
import { runStart } from './start';
import { START_OPTIONS } from './start-config';
import { runStatus } from './status';
import { packageVersion } from './version';

/** Exit code of bad usage or configuration: an unknown flag, a missing or invalid value, a bad config file. */
export const EXIT_USAGE = 2;
/** Exit code of a failure at run time: NATS unreachable, an address taken, the server refusing a change. */
export const EXIT_FAILURE = 1;

const waitMs = (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`must be a number of ms, got '${v}'`);
  return n;
};

// Usage errors throw (exitOverride) instead of exiting with commander's 1, so that they exit with EXIT_USAGE.
const program = new Command('peerbroker')
  .description('peer-to-peer load-balancing gRPC broker')
  .version(packageVersion(), '-V, --version', 'print the version')
  .exitOverride()
  .showHelpAfterError(false);

const start = program
  .command('start')
  .description('run one broker node until SIGTERM or SIGINT (it drains, then exits)')
  .option('--config <file>', 'YAML file with the same keys as the flags, e.g. max-hops: 3 (flags win)');
addFlags(start, START_OPTIONS).action(() => runStart(start.opts().config as string | undefined, givenFlags(start)));

const status = program
  .command('status')
  .description("print every node's live load, status, endpoint and services from the reports on NATS")
  .option('--wait-ms <ms>', 'how long to listen for reports', waitMs, 1500)
  .option('--json', 'print JSON instead of a table');
addFlags(status, CONNECTION_OPTIONS, ['nats']).action(() =>
  runStatus({ ...connectionFrom(givenFlags(status)), waitMs: status.opts().waitMs as number, json: status.opts().json as boolean | undefined }),
);

const runtimeFlags = START_OPTIONS.filter((o) => o.runtime).map((o) => o.flag);
const config = program.command('config').description(`change ${runtimeFlags.join(', ')} on every live node`);
const set = config
  .command('set')
  .description('e.g. config set threshold=0.6 margin=0.15 period-ms=250 \'dedicated={"bank.Securities/*":["n2"]}\'')
  .argument('<key=value...>', runtimeFlags.join(', '));
addFlags(set, CONNECTION_OPTIONS, ['nats']).action((pairs: string[]) => runConfigSet(connectionFrom(givenFlags(set)), pairs));
const get = config.command('get').description('print the config kept in JetStream');
addFlags(get, CONNECTION_OPTIONS, ['nats']).action(() => runConfigGet(connectionFrom(givenFlags(get))));

const collect = (v: string, prev: string[] = []) => [...prev, v];
const genTypes = program
  .command('gen-types')
  .description('write TypeScript types for your .proto files (proto-loader-gen-types with the flags PROTO_LOADER_OPTIONS needs)')
  .argument('<proto...>', '.proto files, e.g. protos/bank.proto')
  .requiredOption('--out <dir>', 'folder the types are written to, e.g. src/gen')
  .option('-I, --include-dir <dir>', 'folder imports are resolved in (repeatable); each file\'s own folder and peerbroker\'s protos are searched too', collect);
genTypes.action((protos: string[]) => runGenTypes(protos, genTypes.opts() as { out: string; includeDir?: string[] }));

program.parseAsync(process.argv).catch((err: unknown) => {
  // commander has printed its message (or the help, or the version) already.
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  process.stderr.write(`peerbroker: ${(err as Error).message ?? err}\n`);
  process.exit(err instanceof ConfigError ? EXIT_USAGE : EXIT_FAILURE);
});
