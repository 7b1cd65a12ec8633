import type { LoadReport } from '../../src/cluster/report-codec';

/** A well-formed load report with plausible defaults, for tests that speak on NATS as a node. */
export function fakeReport(fields: Pick<LoadReport, 'cluster' | 'nodeId' | 'endpoint'> & Partial<LoadReport>): LoadReport {
  return {
    incarnation: Date.now(),
    seq: 1,
    sentAtMs: Date.now(),
    load: 0,
    inFlight: 0,
    capacity: 4,
    status: 'ONLINE',
    services: ['bank.Banking', 'bank.Securities'],
    endpoints: [fields.endpoint],
    periodMs: 200,
    queued: 0,
    loopDelayMs: 0,
    callsRun: 0,
    callsRedirected: 0,
    maxQueue: 16,
    ...fields,
  };
}
