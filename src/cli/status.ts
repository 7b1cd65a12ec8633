import { isRejected, loadSubject, openReport, type LoadReport } from '../cluster';
import type { Connection } from './connection';
import { connectCli } from './security-flags';

/** Options of `peerbroker status`; with a cluster key, only reports signed with it are shown (the others are counted). */
export interface StatusFlags extends Connection {
  /** How long to listen for reports, ms. Default 1500 (three default periods). */
  waitMs?: number;
  json?: boolean;
}

/** Collects one report per node for `waitMs` and returns the latest of each. */
export async function collectReports(
  flags: StatusFlags,
): Promise<{ reports: LoadReport[]; dropped: number; droppedByReason: Record<string, number> }> {
  const nc = await connectCli(flags.nats, flags.natsAuth, 'peerbroker-status');
  const prefix = loadSubject(flags.cluster, '');
  const latest = new Map<string, LoadReport>();
  let dropped = 0;
  const droppedByReason: Record<string, number> = {};
  const drop = (reason: string) => {
    dropped++;
    droppedByReason[reason] = (droppedByReason[reason] ?? 0) + 1;
  };
  const sub = nc.subscribe(`${prefix}*`, {
    callback: (err, msg) => {
      if (err) return;
      const r = openReport(msg.data, flags.clusterKey);
      if (isRejected(r)) return drop(r.reason);
      if (r.cluster !== flags.cluster) return drop('wrong-cluster');
      if (r.nodeId !== msg.subject.slice(prefix.length)) return drop('wrong-subject');
      const prev = latest.get(r.nodeId);
      if (!prev || r.incarnation > prev.incarnation || (r.incarnation === prev.incarnation && r.seq > prev.seq)) {
        latest.set(r.nodeId, r);
      }
    },
  });
  await new Promise((r) => setTimeout(r, flags.waitMs ?? 1_500));
  sub.unsubscribe();
  await nc.close();
  const reports = [...latest.values()].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  return { reports, dropped, droppedByReason };
}

/** Renders reports as the table `peerbroker status` prints. */
export function formatStatusTable(reports: LoadReport[], now = Date.now()): string {
  const rows = [
    ['NODE', 'STATUS', 'LOAD', 'IN-FLIGHT', 'QUEUED', 'CAPACITY', 'ENDPOINT', 'RUN', 'REDIRECTED', 'AGE', 'SERVICES'],
    ...reports.map((r) => [
      r.nodeId,
      r.status,
      r.load.toFixed(2),
      String(r.inFlight),
      String(r.queued),
      String(r.capacity),
      r.endpoints.length > 1 ? `${r.endpoint} (+${r.endpoints.filter((e) => e !== r.endpoint).join(',')})` : r.endpoint,
      String(r.callsRun),
      String(r.callsRedirected),
      `${Math.max(0, now - r.sentAtMs)}ms`,
      r.services.join(','),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

/** `peerbroker status`: prints every node's live load, status, endpoint and services. */
export async function runStatus(flags: StatusFlags): Promise<void> {
  const { reports, dropped, droppedByReason } = await collectReports(flags);
  if (flags.json) {
    process.stdout.write(JSON.stringify({ cluster: flags.cluster, nodes: reports, dropped, droppedByReason }, null, 2) + '\n');
    return;
  }
  if (reports.length === 0) {
    process.stdout.write(`no reports from cluster '${flags.cluster}' within ${flags.waitMs ?? 1_500} ms\n`);
    return;
  }
  process.stdout.write(formatStatusTable(reports) + '\n');
  if (dropped > 0) {
    const why = Object.entries(droppedByReason).map(([k, n]) => `${n} ${k}`).join(', ');
    process.stdout.write(`(${dropped} messages ignored: ${why})\n`);
  }
}
