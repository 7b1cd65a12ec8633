import { describe, expect, it } from 'vitest';
import { decodeReport, encodeReport, isRejected, MAX_REPORT_REDIRECTS, type LoadReport } from '../../../src/cluster';
import { fakeReport } from '../../helpers/reports';

function report(over: Partial<LoadReport> = {}): LoadReport {
  return fakeReport({
    cluster: 'c', nodeId: 'n2', endpoint: '127.0.0.2:7002', incarnation: 1, sentAtMs: 1, load: 0.5, inFlight: 1,
    services: [], endpoints: [], periodMs: 500, takeover: false, ...over,
  });
}

describe('the HTTP URL and redirect counts in a load report', () => {
  it('round-trip, and are left out when the node has none', () => {
    const full = report({ httpUrl: 'https://[::1]:8443', redirects: [{ toNode: 'n3', reason: 'load', count: 12 }] });
    expect(decodeReport(encodeReport(full))).toEqual(full);
    expect(decodeReport(encodeReport(report()))).toEqual(report());
  });

  it.each([
    [{ httpUrl: 'ftp://127.0.0.1:21' }, /http url 'ftp:\/\/127\.0\.0\.1:21' is not http\(s\):\/\/host:port/],
    [{ httpUrl: 'http://127.0.0.1:8000/admin' }, /is not http\(s\):\/\/host:port/],
    [{ redirects: [{ toNode: 'n 3', reason: 'load', count: 1 }] }, /redirect counts are not valid/],
    [{ redirects: [{ toNode: 'n3', reason: '<b>', count: 1 }] }, /redirect counts are not valid/],
    [{ redirects: Array.from({ length: MAX_REPORT_REDIRECTS + 1 }, (_, i) => ({ toNode: `n${i}`, reason: 'load', count: 1 })) }, /too many redirect counts/],
  ])('drop a report whose fields are not valid: %j', (over, why) => {
    const r = decodeReport(encodeReport(report(over as Partial<LoadReport>)));
    expect(isRejected(r) && r.reason).toBe('invalid');
    expect(isRejected(r) && r.message).toMatch(why);
  });
});
