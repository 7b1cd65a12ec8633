/** What every scenario gets from the runner. */
export interface Ctx {
  /** Short windows (the `--quick` run). */
  quick: boolean;
  /** Index of this run (0-based) and how many there are; used to alternate orders. */
  run: number;
  runs: number;
  log(message: string): void;
  /** Values of the scenario's own options (`Scenario.options`), as given on the command line. */
  options: Record<string, string>;
}

/** One line of a scenario's table: labels, and figures whose median over runs is reported. */
export interface Row {
  id: string;
  labels: Record<string, string>;
  metrics: Record<string, number>;
}

/** Calls per second over time, one series per name (a node, or a system). */
export interface Timeline {
  title: string;
  bucketMs: number;
  /** Where the measured window (or phases) start, ms after `go`. */
  marks: Array<{ label: string; atMs: number }>;
  series: Record<string, number[]>;
}

/** What one run of a scenario produced. */
export interface ScenarioRun {
  rows: Row[];
  timelines?: Record<string, Timeline>;
  notes?: string[];
}

/** A scenario's figures over all runs, as written to latest.json. */
export interface ScenarioResult {
  name: string;
  title: string;
  quick: boolean;
  runs: number;
  startedAt: string;
  seconds: number;
  loadavg: Array<[number, number, number]>;
  /** Median of every figure over the runs. */
  rows: Row[];
  /** Every run's rows, for anyone who wants the spread. */
  perRun: Row[][];
  /** From the last run. */
  timelines: Record<string, Timeline>;
  notes: string[];
}

/** A benchmark scenario: runs once per call; renders its section of latest.md. */
export interface Scenario {
  name: string;
  title: string;
  /** Runs only when named with --scenario (too long for the default set). */
  optIn?: boolean;
  /** Runs when --runs is not given, quick and full (default: the runner's 1 and 3). */
  defaultRuns?: { quick: number; full: number };
  /** Command-line options of its own: `--<name> VALUE`. */
  options?: Array<{ name: string; help: string }>;
  /** Throws, naming the option, when an option's value is invalid (checked before anything starts). */
  checkOptions?(options: Record<string, string>, quick: boolean): void;
  run(ctx: Ctx): Promise<ScenarioRun>;
  render(r: ScenarioResult): string;
}
