import { MAX_REPORT_REDIRECTS, type RedirectCount } from '../cluster';

/**
 * Calls this node redirected since start, by target and reason: its reports carry them,
 * so any node's cluster page can show who sends calls where, and why.
 */
export class RedirectFlows {
  private readonly byTarget = new Map<string, Map<string, number>>();
  private changed = false;

  /** Counts one redirect (on every redirect: two map look-ups, no allocation once seen). */
  count(to: string, reason: string): void {
    let reasons = this.byTarget.get(to);
    if (!reasons) this.byTarget.set(to, (reasons = new Map()));
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    this.changed = true;
  }

  /** The counts, the largest first, as many as a report may carry. */
  list(): RedirectCount[] {
    const out: RedirectCount[] = [];
    for (const [toNode, reasons] of this.byTarget) for (const [reason, count] of reasons) out.push({ toNode, reason, count });
    return out.length <= MAX_REPORT_REDIRECTS ? out : out.sort((a, b) => b.count - a.count).slice(0, MAX_REPORT_REDIRECTS);
  }

  /** True once after any redirect was counted: the reporter should hear the new counts. */
  takeChanged(): boolean {
    const c = this.changed;
    this.changed = false;
    return c;
  }
}
