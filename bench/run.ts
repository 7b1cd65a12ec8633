/**
 * `npm run bench`: runs every scenario (or those named with --scenario), each figure
 * the median of --runs runs (3; 1 with --quick), and writes bench/results/latest.{md,json,svg}.
 *
 *   npm run bench                          # everything, median of 3 (~15 min)
 *   npm run bench -- --quick               # everything once, short windows (< 2 min)
 *   npm run bench -- --scenario skew       # one scenario; the others' figures are kept
 *   npm run bench -- --scenario saturation # opt-in: not part of the default set (~25 min)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { median } from './lib/histogram';
import { noiseRetry, quietGate } from './lib/load';
import { natsServerBinary } from './lib/nats';
import { killAllNow, loadAverage } from './lib/proc';
import { renderMarkdown } from './report/markdown';
import { renderSvg } from './report/svg';
import { SCENARIOS } from './scenarios';
import type { Row, Scenario, ScenarioResult, ScenarioRun } from './scenarios/types';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
/** Whatever happens, the bench ends by itself after this long. */
const WATCHDOG_MS = 40 * 60_000;

interface Args {
  quick: boolean;
  scenarios: string[];
  runs: number;
  out: string;
  /** Scenario options (`Scenario.options`), by name. */
  options: Record<string, string>;
}

/** Every scenario's own options, by name. */
const SCENARIO_OPTIONS = new Map(SCENARIOS.flatMap((s) => (s.options ?? []).map((o) => [o.name, { ...o, scenario: s.name }] as const)));

function usage(): never {
  process.stderr.write(
    `usage: npm run bench -- [--quick] [--scenario NAME[,NAME]] [--runs N] [--out DIR] [scenario options]\n` +
      `scenarios: ${SCENARIOS.map((s) => s.name + (s.optIn ? ' (only when named)' : '')).join(', ')}\n` +
      [...SCENARIO_OPTIONS.values()].map((o) => `  --${o.name} VALUE   ${o.scenario}: ${o.help}\n`).join(''),
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, scenarios: [], runs: 0, out: path.join(REPO_ROOT, 'bench', 'results'), options: {} };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    const next = () => argv[++i] ?? usage();
    const eq = v.indexOf('=');
    const optName = v.startsWith('--') ? v.slice(2, eq > 0 ? eq : undefined) : '';
    if (SCENARIO_OPTIONS.has(optName)) a.options[optName] = eq > 0 ? v.slice(eq + 1) : next();
    else if (v === '--quick') a.quick = true;
    else if (v === '--scenario' || v === '-s') a.scenarios.push(...next().split(','));
    else if (v.startsWith('--scenario=')) a.scenarios.push(...v.slice(11).split(','));
    else if (v === '--runs') a.runs = Number(next());
    else if (v === '--out') a.out = path.resolve(next());
    else if (v === '--help' || v === '-h') usage();
    else {
      process.stderr.write(`bench: unknown argument '${v}'\n`);
      usage();
    }
  }
  const known = SCENARIOS.map((s) => s.name);
  for (const s of a.scenarios) {
    if (!known.includes(s)) {
      process.stderr.write(`bench: unknown scenario '${s}' (known: ${known.join(', ')})\n`);
      process.exit(2);
    }
  }
  for (const s of SCENARIOS.filter((x) => a.scenarios.includes(x.name))) {
    try {
      s.checkOptions?.(a.options, a.quick);
    } catch (err) {
      process.stderr.write(`bench: ${(err as Error).message}\n`);
      process.exit(2);
    }
  }
  if (a.runs && (!Number.isInteger(a.runs) || a.runs < 1 || a.runs > 9)) {
    process.stderr.write(`bench: '--runs' must be 1..9\n`);
    process.exit(2);
  }
  return a;
}

/**
 * Median of every metric of every row over the runs; rows keep the first run's order. A ratio
 * taken inside one run (a key ending in `Ratio`, or with `Vs`: one system over its anchor of
 * the same run) also keeps its smallest and largest value over the runs, as `<key>Min` and
 * `<key>Max`, so the noise shows beside the median (`spread()` prints them).
 */
function medianRows(runs: ScenarioRun[]): Row[] {
  const ids: string[] = [];
  for (const r of runs) for (const row of r.rows) if (!ids.includes(row.id)) ids.push(row.id);
  return ids.map((id) => {
    const rows = runs.map((r) => r.rows.find((x) => x.id === id)).filter((x): x is Row => !!x);
    const keys = [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))];
    const metrics: Record<string, number> = {};
    for (const k of keys) {
      const values = rows.map((r) => r.metrics[k]);
      metrics[k] = median(values);
      if (isPairRatio(k)) {
        const finite = values.filter((v) => Number.isFinite(v));
        if (finite.length > 1) {
          metrics[`${k}Min`] = Math.min(...finite);
          metrics[`${k}Max`] = Math.max(...finite);
        }
      }
    }
    return { id, labels: rows[0].labels, metrics };
  });
}

function isPairRatio(key: string): boolean {
  return key.endsWith('Ratio') || key.includes('Vs');
}

interface ResultsFile {
  generatedAt: string;
  machine: { cpus: number; model: string; node: string; memGiB: number };
  scenarios: Record<string, ScenarioResult>;
}

function readExisting(file: string): ResultsFile | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as ResultsFile;
  } catch {
    return undefined;
  }
}

function writeResults(out: string, results: ResultsFile): void {
  fs.mkdirSync(out, { recursive: true });
  const write = (name: string, text: string) => {
    const tmp = path.join(out, `${name}.tmp`);
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, path.join(out, name));
  };
  write('latest.json', `${JSON.stringify(results, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
  write('latest.md', renderMarkdown(results));
  write('latest.svg', renderSvg(results));
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const watchdog = setTimeout(() => {
    process.stderr.write('bench: watchdog: giving up after 40 minutes\n');
    killAllNow();
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();
  natsServerBinary();
  // On a shared machine, each measurement first waits (bounded) for other work to calm down.
  quietGate.maxWaitMs = args.quick ? 0 : 5_000;
  quietGate.budgetMs = args.quick ? 0 : 45_000;
  // ...and a measurement disturbed by other work anyway is taken again (bounded).
  noiseRetry.perRun = args.quick ? 0 : 2;
  noiseRetry.budget = args.quick ? 0 : 20;
  const chosen = args.scenarios.length ? SCENARIOS.filter((s) => args.scenarios.includes(s.name)) : SCENARIOS.filter((s) => !s.optIn);
  // --runs wins; otherwise each scenario's own default, else 3 (1 with --quick).
  const runsOf = (s: Scenario) => args.runs || (args.quick ? (s.defaultRuns?.quick ?? 1) : (s.defaultRuns?.full ?? 3));
  const maxRuns = Math.max(...chosen.map(runsOf));
  const jsonFile = path.join(args.out, 'latest.json');
  // A partial run keeps the figures of the scenarios it did not run.
  const previous = args.scenarios.length ? readExisting(jsonFile) : undefined;
  const results: ResultsFile = {
    generatedAt: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model ?? 'unknown',
      node: process.version,
      memGiB: Math.round(os.totalmem() / 2 ** 30),
    },
    scenarios: { ...(previous?.scenarios ?? {}) },
  };
  const t0 = Date.now();
  const log = (m: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}\n`);
  log(`load average ${loadAverage().join(' ')}; ${maxRuns} run(s)${args.quick ? ', quick' : ''}: ${chosen.map((s) => s.name).join(', ')}`);

  const runs = new Map<string, ScenarioRun[]>();
  const meta = new Map<string, { startedAt: string; seconds: number; loadavg: Array<[number, number, number]> }>();
  const failures = new Map<string, string[]>();
  // Run-major: each scenario's runs are spread over the whole bench, so a burst of other
  // work on the machine hits one run of a scenario, not all of them.
  for (let run = 0; run < maxRuns; run++) {
    for (const s of chosen) {
      if (run >= runsOf(s)) continue;
      const m = meta.get(s.name) ?? { startedAt: new Date().toISOString(), seconds: 0, loadavg: [] };
      meta.set(s.name, m);
      const st = Date.now();
      m.loadavg.push(loadAverage());
      log(`${s.name}: run ${run + 1}/${runsOf(s)}`);
      let r: ScenarioRun;
      try {
        r = await s.run({ quick: args.quick, run, runs: runsOf(s), log, options: args.options });
      } catch (err) {
        // One failed run does not lose the others: it is reported, and the medians use the runs that worked.
        const message = (err as Error).message.split('\n').slice(0, 6).join(' / ');
        log(`${s.name}: run ${run + 1} failed: ${message}`);
        failures.set(s.name, [...(failures.get(s.name) ?? []), `run ${run + 1} failed: ${message}`]);
        m.seconds += (Date.now() - st) / 1000;
        continue;
      }
      m.seconds += (Date.now() - st) / 1000;
      runs.set(s.name, [...(runs.get(s.name) ?? []), r]);
      const all = runs.get(s.name)!;
      results.scenarios[s.name] = {
        name: s.name,
        title: s.title,
        quick: args.quick,
        runs: all.length,
        startedAt: m.startedAt,
        seconds: Math.round(m.seconds),
        loadavg: m.loadavg,
        rows: medianRows(all),
        perRun: all.map((x) => x.rows),
        timelines: r.timelines ?? {},
        notes: [...(r.notes ?? []), ...(failures.get(s.name) ?? [])],
      };
      writeResults(args.out, results);
    }
  }
  clearTimeout(watchdog);
  for (const [name, list] of failures) {
    log(`${name}: ${list.length} failed run(s): ${list.join('; ')}`);
    const r = results.scenarios[name];
    if (r) r.notes = [...new Set([...r.notes, ...list])];
  }
  if (failures.size) writeResults(args.out, results);
  log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s; load average ${loadAverage().join(' ')}; measurements taken again for noise: ${noiseRetry.used}`);
  log(`wrote ${path.relative(process.cwd(), path.join(args.out, 'latest.md'))}, latest.json, latest.svg`);
  process.stdout.write(renderMarkdown(results));
}

main().catch((err: Error) => {
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  killAllNow();
  process.exit(1);
});
