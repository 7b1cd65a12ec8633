import { SCENARIOS } from '../scenarios';
import type { ScenarioResult } from '../scenarios/types';
import { renderSummary } from './summary';

interface Results {
  generatedAt: string;
  machine: { cpus: number; model: string; node: string; memGiB: number };
  scenarios: Record<string, ScenarioResult>;
}

function loadavgText(r: ScenarioResult): string {
  return r.loadavg.map((l) => l[0].toFixed(2)).join(', ');
}

/** latest.md: one section per scenario, each with its table. */
export function renderMarkdown(results: Results): string {
  const m = results.machine;
  const out: string[] = [
    '# peerbroker benchmark results',
    '',
    `Generated ${results.generatedAt} on ${m.cpus} × ${m.model}, ${m.memGiB} GiB, Node ${m.node}. ` +
      'Every figure is the median over the runs named under each heading (each figure on its own). ' +
      'Latencies are in ms, measured by the load generators (separate processes), to the answer from each call\'s ' +
      'scheduled send time (open loop), or from its start (closed loop). ' +
      'How to read them: [bench/README.md](../README.md).',
    '',
    '![charts](latest.svg)',
    '',
    '## Targets',
    '',
    renderSummary(results.scenarios),
    '',
  ];
  for (const s of SCENARIOS) {
    const r = results.scenarios[s.name];
    if (!r) continue;
    out.push(`## ${r.title}`, '');
    out.push(
      `_${r.runs} run(s)${r.quick ? ', quick' : ''}, started ${r.startedAt}, ${r.seconds} s; ` +
        `1-minute load average at the start of each run: ${loadavgText(r)}._`,
      '',
    );
    out.push(s.render(r), '');
    for (const n of r.notes) out.push(`- ${n}`);
    if (r.notes.length) out.push('');
  }
  return `${out.join('\n')}\n`;
}
