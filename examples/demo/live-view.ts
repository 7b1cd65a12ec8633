import * as grpc from '@grpc/grpc-js';
import { brokerProto } from '../../src';
import type { BrokerClient } from '../../src/generated/peerbroker/v1/Broker';
import type { StatusResponse__Output } from '../../src/generated/peerbroker/v1/StatusResponse';
import type { DemoNode } from './cluster';
import type { LoadProgress } from './load';

/** How often the view is refreshed. */
export const DEFAULT_REFRESH_MS = 1_000;

/** One node's line of the view, from its `peerbroker.v1.Broker/Status`. */
interface NodeSample {
  at: number;
  load: number;
  inFlight: number;
  run: number;
  redirected: number;
}

/**
 * A per-node view refreshed about every second from each broker's Status RPC:
 * an in-place table when stdout is a terminal, one plain line per refresh otherwise.
 */
export class LiveView {
  private readonly clients: BrokerClient[];
  private readonly last = new Map<string, NodeSample>();
  private readonly tty: boolean;
  private timer?: NodeJS.Timeout;
  private drawn = 0;
  private busy = false;
  private title = '';
  private progress?: LoadProgress;

  constructor(
    private readonly nodes: DemoNode[],
    private readonly header: string,
    private readonly out: NodeJS.WriteStream = process.stdout,
  ) {
    const Client = brokerProto().peerbroker.v1.Broker;
    this.clients = nodes.map((n) => new Client(n.endpoint, grpc.credentials.createInsecure()));
    this.tty = Boolean(out.isTTY) && process.env.TERM !== 'dumb';
  }

  /** Shows the view for one phase; `progress` is the load generator's live counters. */
  async begin(title: string, progress: LoadProgress): Promise<void> {
    this.title = title;
    this.progress = progress;
    this.drawn = 0;
    if (!this.tty) this.out.write(`${this.header}\n${title}\n`);
    await this.sample(); // a baseline, so the first rates are per second of this phase
    this.timer = setInterval(() => void this.refresh(), DEFAULT_REFRESH_MS);
  }

  /** Draws a last frame and stops refreshing; later output goes below it. */
  async end(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.refresh();
  }

  /** Closes the Status clients. */
  close(): void {
    clearInterval(this.timer);
    for (const c of this.clients) c.close();
  }

  private async refresh(): Promise<void> {
    if (this.busy) return; // a slow answer must not stack refreshes
    this.busy = true;
    try {
      const prev = new Map(this.last);
      await this.sample();
      this.draw(prev);
    } finally {
      this.busy = false;
    }
  }

  private async sample(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n, i) => {
        const st = await status(this.clients[i]).catch(() => undefined);
        if (!st?.self) return void this.last.delete(n.nodeId);
        this.last.set(n.nodeId, {
          at: performance.now(),
          load: st.self.load,
          inFlight: st.self.inFlight,
          run: Number(st.callsRun),
          redirected: Number(st.callsRedirected),
        });
      }),
    );
  }

  private draw(prev: Map<string, NodeSample>): void {
    const p = this.progress!;
    const t = ((performance.now() - p.startedAt) / 1000).toFixed(1);
    const rows = this.nodes.map((n) => {
      const s = this.last.get(n.nodeId);
      const b = prev.get(n.nodeId);
      if (!s) return [n.nodeId, n.endpoint, '-', '-', '-', '-', '-', '-', 'no answer'];
      const secs = b ? (s.at - b.at) / 1000 : 0;
      const rate = (now: number, before: number | undefined) => (b && secs > 0 ? String(Math.round((now - (before ?? 0)) / secs)) : '-');
      return [
        n.nodeId,
        n.endpoint,
        s.load.toFixed(2),
        bar(s.load),
        String(s.inFlight),
        String(s.run),
        rate(s.run, b?.run),
        String(s.redirected),
        rate(s.redirected, b?.redirected),
      ];
    });
    if (!this.tty) {
      const nodes = rows.map((r) => `${r[0]} load ${r[2]} run ${r[5]} (${r[6]}/s) redirected ${r[7]} (${r[8]}/s)`).join(' | ');
      this.out.write(`  t=${t.padStart(4)}s  ${nodes}  | client: ${p.sent} sent, ${p.failed} failed, ${p.inFlight} in flight\n`);
      return;
    }
    const table = [['NODE', 'ENDPOINT', 'LOAD', '', 'IN-FLIGHT', 'RUN', 'RUN/S', 'REDIRECTED', 'REDIR/S'], ...rows];
    const widths = table[0].map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
    const lines = [
      this.header,
      `${this.title}   t=${t}s   client: ${p.sent} sent, ${p.ok} ok, ${p.failed} failed, ${p.inFlight} in flight`,
      ...table.map((r) => '  ' + r.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd()),
    ];
    // Back to the first line of the previous frame, then overwrite each line.
    let text = this.drawn > 0 ? `\x1b[${this.drawn}F` : '';
    for (const l of lines) text += `\x1b[2K${l}\n`;
    this.out.write(text);
    this.drawn = lines.length;
  }
}

function status(client: BrokerClient): Promise<StatusResponse__Output> {
  return new Promise((resolve, reject) =>
    client.Status({}, { deadline: Date.now() + 800 }, (err, res) => (err || !res ? reject(err ?? new Error('empty answer')) : resolve(res))),
  );
}

function bar(load: number): string {
  const n = Math.round(Math.min(1, Math.max(0, load)) * 10);
  return '#'.repeat(n) + '.'.repeat(10 - n);
}
