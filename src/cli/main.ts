#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '../errors';
import { runConfigGet, runConfigSet } from './config-command';
import { addSecurityOptions, clusterKeyFrom, natsAuthFrom, securityFlags, withFlagName } from './security-flags';
import { runStart } from './start';
import { runStatus } from './status';

// Numbers are checked here for shape only; ranges are checked once, by the options schema.
const num = (flag: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`'${flag}' must be a number, got '${v}'`);
  return n;
};

const program = new Command('peerbroker')
  .description('peer-to-peer load-balancing gRPC broker')
  .showHelpAfterError(false);

program
  .command('start')
  .description('run one broker node until SIGTERM')
  .option('--config <file>', 'YAML file with the same fields as the flags (flags win)')
  .option('--node-id <id>', 'this node\'s id (letters, digits, _ and -)')
  .option('--listen <host:port>', 'address the gRPC server listens on (default 127.0.0.1:0)')
  .option('--advertise <host:port>', 'address peers and clients are told (default: listen)')
  .option('--nats <urls>', 'NATS server URLs, comma-separated')
  .option('--cluster <name>', 'cluster name (default "default")')
  .option('--capacity <n>', 'concurrent calls at 100% load (default 64)', num('--capacity'))
  .option('--max-queue <n>', 'calls that may wait for a slot (default 4 x capacity)', num('--max-queue'))
  .option('--threshold <x>', 'below this load a call runs here (default 0.5)', num('--threshold'))
  .option('--margin <x>', 'a peer must be this much less loaded (default 0.2)', num('--margin'))
  .option('--period-ms <ms>', 'load report period (default 500)', num('--period-ms'))
  .option('--offline-after <n>', 'missed periods before a peer is off-line (default 3)', num('--offline-after'))
  .option('--max-hops <n>', 'redirects after which a call runs where it lands (default 2)', num('--max-hops'))
  .option('--peer-choice <name>', 'least-loaded-accounted (default) | two-choices | least-loaded')
  .option('--services <names>', 'services this node hosts, comma-separated (default: all of the module)')
  .option('--forward-legacy', 'forward calls of clients that do not follow redirects')
  .option('--no-takeover', "never adopt the endpoint of an off-line peer")
  .option('--takeover-on-leave', 'also adopt the own endpoint of peers that leave cleanly (adopted ones always move on)')
  .option('--on-adopt <command>', 'shell command run before adopting an endpoint (env PEERBROKER_ENDPOINT, PEERBROKER_NODE)')
  .option('--on-release <command>', 'shell command run after releasing an adopted endpoint')
  .option('--drain-grace-ms <ms>', 'on SIGTERM, how long in-flight calls may take (default 15000)', num('--drain-grace-ms'))
  .option('--max-loop-delay-ms <ms>', 'main-loop delay above which the node is unhealthy (default 1000)', num('--max-loop-delay-ms'))
  .option('--module <path>', 'module exporting register(broker)')
  .option('--log-level <level>', 'fatal | error | warn | info | debug (default info)')
  .action(async (o: Record<string, unknown>) => {
    const flags: Record<string, unknown> = {
      config: o.config,
      'node-id': o.nodeId,
      listen: o.listen,
      advertise: o.advertise,
      nats: o.nats,
      cluster: o.cluster,
      capacity: o.capacity,
      'max-queue': o.maxQueue,
      threshold: o.threshold,
      margin: o.margin,
      'period-ms': o.periodMs,
      'offline-after': o.offlineAfter,
      'max-hops': o.maxHops,
      'peer-choice': o.peerChoice,
      services: o.services,
      'forward-legacy': o.forwardLegacy,
      // commander sets `takeover` to true unless --no-takeover is given
      takeover: o.takeover === false ? false : undefined,
      'takeover-on-leave': o.takeoverOnLeave,
      'on-adopt': o.onAdopt,
      'on-release': o.onRelease,
      'drain-grace-ms': o.drainGraceMs,
      'max-loop-delay-ms': o.maxLoopDelayMs,
      module: o.module,
      'log-level': o.logLevel,
      ...securityFlags(o),
    };
    await runStart(flags);
  });

program
  .command('status')
  .description("print every node's live load, status, endpoint and services from the reports on NATS")
  .requiredOption('--nats <urls>', 'NATS server URLs, comma-separated')
  .option('--cluster <name>', 'cluster name', 'default')
  .option('--wait-ms <ms>', 'how long to listen for reports', num('--wait-ms'), 1500)
  .option('--json', 'print JSON instead of a table')
  .action(async (o: { nats: string; cluster: string; waitMs: number; json?: boolean }) => {
    await runStatus({ nats: o.nats, cluster: o.cluster, waitMs: o.waitMs, json: o.json, ...security(o) });
  });

const config = program.command('config').description('change threshold, margin, period and rules on every live node');
config
  .command('set')
  .description('e.g. config set threshold=0.6 margin=0.15 period-ms=250 \'dedicated={"bank.Securities/*":["n2"]}\'')
  .argument('<key=value...>', 'threshold, margin, period-ms, max-hops, peer-choice, forward-legacy, sessions, dedicated')
  .requiredOption('--nats <urls>', 'NATS server URLs, comma-separated')
  .option('--cluster <name>', 'cluster name', 'default')
  .action(async (pairs: string[], o: { nats: string; cluster: string }) => runConfigSet({ ...o, ...security(o) }, pairs));
config
  .command('get')
  .description('print the config kept in JetStream')
  .requiredOption('--nats <urls>', 'NATS server URLs, comma-separated')
  .option('--cluster <name>', 'cluster name', 'default')
  .action(async (o: { nats: string; cluster: string }) => runConfigGet({ ...o, ...security(o) }));

// TLS and authentication: gRPC TLS for `start`; NATS auth and the cluster key for every command.
addSecurityOptions(program.commands.find((c) => c.name() === 'start')!, { grpc: true });
addSecurityOptions(program.commands.find((c) => c.name() === 'status')!, { grpc: false });
for (const c of config.commands) addSecurityOptions(c, { grpc: false });

/** NATS auth and cluster key of `status` and `config` (files are read and checked here). */
function security(o: object) {
  const flags = securityFlags(o as Record<string, unknown>);
  try {
    return { natsAuth: natsAuthFrom(flags), clusterKey: clusterKeyFrom(flags) };
  } catch (err) {
    throw withFlagName(err);
  }
}

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`peerbroker: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`peerbroker: ${(err as Error).message ?? err}\n`);
  process.exit(1);
});
