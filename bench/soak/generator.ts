/**
 * A soak mix generator process: runs every kind of call of its brief against one target at
 * once, each kind a few lanes (a lane makes its next call when the last one ended), until the
 * runner says stop, its own time runs out or it started `maxCalls`; then lets the calls in
 * flight end (bounded) and sends back the calls by kind and outcome. Started by `run.ts`.
 *
 *   node dist/bench/soak/generator.js '<GeneratorBrief as JSON>'
 */
import { bulkStep, cancelStep, episodeStep, sessionStep, SoakClients, streamStep, type Step } from './kinds';
import type { Counts, FromSoakGenerator, GeneratorBrief, ToSoakGenerator } from './protocol';

/** How often the generator tells the runner how many calls ended. */
const PROGRESS_EVERY_MS = 1_000;
/** Bulk calls before `ready`, so every channel is connected. */
const WARM_CALLS = 20;
/** Distinct status details kept per kind and outcome. */
const KEPT_DETAILS = 3;

/** The lanes of one generator and what their calls did. */
class Lanes {
  readonly counts: Counts = {};
  /** Status details of failed calls: the first few distinct ones of each kind and outcome. */
  readonly details: Record<string, string[]> = {};
  started = 0;
  ended = 0;
  stopping = false;
  private readonly pauses = new Set<NodeJS.Timeout>();

  constructor(private readonly maxCalls: number) {}

  /** Counts a call of `kind` as started; the function returned records how it ended (once). */
  readonly start = (kind: string) => {
    this.started++;
    let open = true;
    return (outcome: string, details?: string) => {
      if (!open) return;
      open = false;
      this.ended++;
      const byOutcome = (this.counts[kind] ??= {});
      byOutcome[outcome] = (byOutcome[outcome] ?? 0) + 1;
      if (details === undefined || outcome === 'OK') return;
      const kept = (this.details[`${kind} ${outcome}`] ??= []);
      if (kept.length < KEPT_DETAILS && !kept.includes(details)) kept.push(details);
    };
  };

  /** Runs `lanes` loops of `step`, each waiting `pauseMs` between turns. */
  run(step: Step, lanes: number, pauseMs = 0): void {
    for (let i = 0; i < lanes; i++) {
      const next = (): void => {
        if (this.stopping || this.started >= this.maxCalls) return;
        step(this.start, () => {
          if (pauseMs <= 0) return next();
          const t = setTimeout(() => {
            this.pauses.delete(t);
            next();
          }, pauseMs);
          this.pauses.add(t);
        });
      };
      next();
    }
  }

  /** Starts no more calls; resolves when every call started has ended, or after `drainMs`. */
  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    for (const t of this.pauses) clearTimeout(t);
    const until = Date.now() + drainMs;
    while (this.ended < this.started && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  }
}

function send(msg: FromSoakGenerator): Promise<void> {
  return new Promise((resolve) => (process.send ? process.send(msg, undefined, {}, () => resolve()) : resolve()));
}

async function main(): Promise<void> {
  const brief = JSON.parse(process.argv[2] ?? '{}') as GeneratorBrief;
  // Bounded whatever happens: a generator never outlives its brief by more than a minute.
  setTimeout(() => process.exit(3), brief.maxMs + brief.drainMs + 60_000).unref();
  process.on('disconnect', () => process.exit(4));
  const clients = new SoakClients(brief.target, brief.deadlineMs);
  await clients.open();
  for (let i = 0; i < WARM_CALLS; i++) {
    await new Promise<void>((r) => clients.plain.call(() => r()));
    await new Promise<void>((r) => clients.follow.call(() => r()));
  }
  let go!: () => void;
  const going = new Promise<void>((r) => (go = r));
  const told = new Promise<'stop'>((resolve) => {
    process.on('message', (m: ToSoakGenerator) => {
      if (m.type === 'go') go();
      else if (m.type === 'stop') resolve('stop');
    });
  });
  await send({ type: 'ready' });
  await going;

  const lanes = new Lanes(brief.maxCalls);
  const m = brief.mix;
  lanes.run(bulkStep('plain', () => clients.plain), m.plain);
  lanes.run(bulkStep('follow', () => clients.follow), m.follow);
  lanes.run(streamStep(clients, 'server'), m.streamServer);
  lanes.run(streamStep(clients, 'client'), m.streamClient);
  lanes.run(streamStep(clients, 'bidi'), m.streamBidi);
  lanes.run(cancelStep(clients), m.cancel, m.cancelEveryMs);
  lanes.run(sessionStep(clients, 'commit'), m.sessionCommit);
  lanes.run(sessionStep(clients, 'abandon'), m.sessionAbandon);
  lanes.run(episodeStep(clients, m.episodeQueued), m.episodeQueued > 0 ? 1 : 0, m.episodeEveryMs);

  const progress = setInterval(() => void send({ type: 'progress', calls: lanes.ended }), PROGRESS_EVERY_MS);
  let timer!: NodeJS.Timeout;
  const timeUp = new Promise<'time'>((r) => (timer = setTimeout(() => r('time'), brief.maxMs)));
  const stoppedBy = await Promise.race([told, timeUp]);
  clearTimeout(timer);
  await lanes.stop(brief.drainMs);
  clearInterval(progress);
  await send({ type: 'result', counts: lanes.counts, details: lanes.details, unfinished: lanes.started - lanes.ended, stoppedBy });
  await Promise.race([clients.close(), new Promise((r) => setTimeout(r, 1_000))]);
  process.exit(0);
}

main().catch(async (err: Error) => {
  await send({ type: 'failed', message: err.stack ?? String(err) });
  process.exit(1);
});
