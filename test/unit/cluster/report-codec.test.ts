import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeReport,
  encodeReport,
  isRejected,
  isValidNodeId,
  MAX_REPORT_BYTES,
  type LoadReport,
  type Rejected,
  type ReportStatus,
} from '../../../src/cluster/report-codec';
import { mutationsOf, varint } from '../../helpers/bytes';

function report(over: Partial<LoadReport> = {}): LoadReport {
  return {
    cluster: 'prod-eu',
    nodeId: 'n2',
    endpoint: '127.0.0.2:7002',
    incarnation: 1_732_590_000_000,
    seq: 42,
    sentAtMs: 1_732_590_012_345,
    load: 0.625,
    inFlight: 40,
    capacity: 64,
    status: 'DRAINING',
    services: ['bank.Banking', 'bank.Securities'],
    endpoints: ['127.0.0.2:7002', '127.0.0.9:7009'],
    periodMs: 500,
    queued: 3,
    loopDelayMs: 12.5,
    callsRun: 123_456,
    callsRedirected: 789_012,
    maxQueue: 256,
    takeover: true,
    ...over,
  };
}

/** The bytes as a plain Uint8Array, as a caller that is not Node's Buffer hands them over. */
function plain(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

function expectRejected(r: LoadReport | Rejected, reason: Rejected['reason']): Rejected {
  expect(isRejected(r)).toBe(true);
  const rej = r as Rejected;
  expect(rej.reason).toBe(reason);
  expect(typeof rej.message).toBe('string');
  expect(rej.message.length).toBeGreaterThan(0);
  return rej;
}

function expectInvalid(over: Partial<LoadReport>, messagePart?: string): void {
  const rej = expectRejected(decodeReport(encodeReport(report(over))), 'invalid');
  if (messagePart) expect(rej.message).toContain(messagePart);
}

/** Appends a protobuf field: a tag and a varint value (wire type 0). */
function withVarintField(bytes: Uint8Array, field: number, value: number): Uint8Array {
  return Uint8Array.from([...bytes, ...varint((field << 3) | 0), ...varint(value)]);
}


const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SERVICE = /^[A-Za-z_][A-Za-z0-9_.]{0,255}$/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const STATUSES: readonly string[] = ['ONLINE', 'DRAINING', 'UNHEALTHY', 'LEAVING'];

function isHostPort(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  const m = HOST_PORT.exec(v);
  return m !== null && Number(m[2]) <= 65535;
}

function isCount(v: unknown): boolean {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/** The validation rules, written out independently of the codec. */
function satisfiesRules(r: LoadReport): boolean {
  return (
    typeof r.cluster === 'string' &&
    r.cluster.length > 0 &&
    NODE_ID.test(r.nodeId) &&
    isHostPort(r.endpoint) &&
    Number.isFinite(r.load) &&
    r.load >= 0 &&
    r.load <= 1 &&
    Number.isInteger(r.capacity) &&
    r.capacity >= 1 &&
    r.periodMs >= 10 &&
    r.periodMs <= 60_000 &&
    STATUSES.includes(r.status) &&
    Array.isArray(r.services) &&
    r.services.length <= 1000 &&
    r.services.every((s) => SERVICE.test(s)) &&
    Array.isArray(r.endpoints) &&
    r.endpoints.length <= 64 &&
    r.endpoints.every(isHostPort) &&
    [r.incarnation, r.seq, r.sentAtMs, r.inFlight, r.queued, r.callsRun, r.callsRedirected, r.maxQueue].every(isCount) &&
    Number.isFinite(r.loopDelayMs) &&
    r.loopDelayMs >= 0
  );
}

describe('encodeReport and decodeReport', () => {
  it('round-trip a valid report with every field equal', () => {
    const r = report();
    expect(decodeReport(encodeReport(r))).toEqual(r);
  });

  it.each(['ONLINE', 'DRAINING', 'UNHEALTHY', 'LEAVING'] as const)('round-trip the status %s', (status) => {
    expect(decodeReport(encodeReport(report({ status })))).toEqual(report({ status }));
  });

  it('round-trip a report with zero counts, no services and no extra endpoints', () => {
    const r = report({
      seq: 0,
      load: 0,
      inFlight: 0,
      queued: 0,
      loopDelayMs: 0,
      callsRun: 0,
      callsRedirected: 0,
      maxQueue: 0,
      takeover: false,
      services: [],
      endpoints: [],
    });
    expect(decodeReport(encodeReport(r))).toEqual(r);
  });

  it('round-trip load 1 and counts up to Number.MAX_SAFE_INTEGER', () => {
    const r = report({ load: 1, incarnation: Number.MAX_SAFE_INTEGER, callsRun: Number.MAX_SAFE_INTEGER });
    expect(decodeReport(encodeReport(r))).toEqual(r);
  });

  it('round-trip an IPv6 endpoint in brackets', () => {
    const r = report({ endpoint: '[::1]:7002', endpoints: ['[::1]:7002'] });
    expect(decodeReport(encodeReport(r))).toEqual(r);
  });

  it('round-trip any valid report (property)', () => {
    const hostPort = fc
      .tuple(fc.stringMatching(/^[a-z0-9.-]{1,20}$/), fc.integer({ min: 0, max: 65535 }))
      .map(([h, p]) => `${h}:${p}`);
    const validReport: fc.Arbitrary<LoadReport> = fc.record({
      cluster: fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/),
      nodeId: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
      endpoint: hostPort,
      incarnation: fc.maxSafeNat(),
      seq: fc.maxSafeNat(),
      sentAtMs: fc.maxSafeNat(),
      load: fc.double({ min: 0, max: 1, noNaN: true }),
      inFlight: fc.integer({ min: 0, max: 0xffffffff }),
      capacity: fc.integer({ min: 1, max: 0xffffffff }),
      status: fc.constantFrom<ReportStatus>('ONLINE', 'DRAINING', 'UNHEALTHY', 'LEAVING'),
      services: fc.array(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.]{0,40}$/), { maxLength: 5 }),
      endpoints: fc.array(hostPort, { maxLength: 5 }),
      periodMs: fc.integer({ min: 10, max: 60_000 }),
      queued: fc.integer({ min: 0, max: 0xffffffff }),
      loopDelayMs: fc.double({ min: 0, max: 1e9, noNaN: true }),
      callsRun: fc.maxSafeNat(),
      callsRedirected: fc.maxSafeNat(),
      maxQueue: fc.integer({ min: 0, max: 0xffffffff }),
      takeover: fc.boolean(),
    });
    fc.assert(
      fc.property(validReport, (r) => {
        expect(decodeReport(encodeReport(r))).toEqual(r);
      }),
      { numRuns: 500 },
    );
  });
});

describe('decodeReport on malformed input', () => {
  it('rejects empty input as malformed', () => {
    expectRejected(decodeReport(new Uint8Array(0)), 'malformed');
  });

  it('rejects bytes that are not protobuf as malformed', () => {
    expectRejected(decodeReport(new Uint8Array(16).fill(0xff)), 'malformed');
    expectRejected(decodeReport(Uint8Array.from([0x0f, 0x3c, 0x99, 0x07, 0xee, 0x42, 0x11, 0xfe])), 'malformed');
    expectRejected(decodeReport(new TextEncoder().encode('{"load":0.5,"nodeId":"n2"}')), 'malformed');
  });

  it('rejects an encoding cut inside its last varint as malformed', () => {
    const e = encodeReport(report());
    expectRejected(decodeReport(e.subarray(0, e.length - 1)), 'malformed');
    expectRejected(decodeReport(plain(e).subarray(0, e.length - 1)), 'malformed');
  });

  it('rejects an encoding cut inside a string as malformed when given a plain Uint8Array', () => {
    const e = plain(encodeReport(report()));
    // Bytes 0..4 are the cluster field's tag, its length 7 and 3 of its 7 characters.
    expectRejected(decodeReport(e.subarray(0, 5)), 'malformed');
  });

  // NATS hands the subscriber a Node Buffer, and encodeReport returns one. A cut
  // string field must be caught whichever of the two the bytes arrive as.
  it('rejects an encoding cut inside a string as malformed when given a Node Buffer', () => {
    const e = Buffer.from(encodeReport(report()));
    expectRejected(decodeReport(e.subarray(0, 5)), 'malformed');
  });

  // Fields may come in any order on the wire, so a string can be the last field. A
  // string whose declared length runs past the end must not be accepted cut short:
  // here the endpoint 127.0.0.2:7002 (14 bytes declared) loses its last two digits.
  it.each([
    ['a plain Uint8Array', plain],
    ['a Node Buffer', (b: Uint8Array) => Buffer.from(b)],
  ])('rejects a last string field that is cut short as malformed, given %s', (_what, as) => {
    const cut = new TextEncoder().encode('127.0.0.2:70');
    const bytes = Uint8Array.from([...encodeReport(report()), 0x1a, 14, ...cut]);
    const r = decodeReport(as(bytes));
    expect(isRejected(r) ? r : { accepted: r.endpoint }).toMatchObject({ reason: 'malformed' });
  });

  // Proto3 has no required fields: a cut exactly between two trailing fields is a
  // well-formed message without them. What matters is that no value is altered.
  it('turns a cut-short encoding into a rejection, or into the same report with only trailing fields zero', () => {
    const original = report();
    const e = encodeReport(original);
    for (const bytes of [plain(e), Buffer.from(e)]) {
      for (let n = 0; n < e.length; n++) {
        const r = decodeReport(bytes.subarray(0, n));
        if (isRejected(r)) continue;
        const keys = Object.keys(original) as Array<keyof LoadReport>;
        for (const k of keys) {
          if (r[k] !== 0 && r[k] !== false) expect(r[k], `prefix of ${n} bytes, field ${k}`).toEqual(original[k]);
        }
        expect(r.periodMs, `prefix of ${n} bytes`).toBe(original.periodMs);
      }
    }
  });

  it('rejects input over MAX_REPORT_BYTES as malformed without decoding it', () => {
    expectRejected(decodeReport(new Uint8Array(MAX_REPORT_BYTES + 1)), 'malformed');
  });

  it('rejects a valid report padded past MAX_REPORT_BYTES as malformed, and accepts it at exactly the limit', () => {
    const e = encodeReport(report());
    // An unknown length-delimited field 100 (tag 0xa2 0x06) with a 3-byte length.
    const pad = (total: number): Uint8Array => {
      const len = total - e.length - 5;
      const out = new Uint8Array(total);
      out.set(e, 0);
      out.set([0xa2, 0x06, ...varint(len)], e.length);
      return out;
    };
    expect(decodeReport(pad(MAX_REPORT_BYTES))).toEqual(report());
    expectRejected(decodeReport(pad(MAX_REPORT_BYTES + 1)), 'malformed');
  });
});

describe('decodeReport on well-formed reports with bad values', () => {
  it.each([1.5, -0.1, Number.NaN, Number.POSITIVE_INFINITY])('rejects load %s as invalid', (load) => {
    expectInvalid({ load }, 'load');
  });

  it.each(['a.b', 'a*', 'a>', 'n 2', '', 'x'.repeat(65)])('rejects node id %j as invalid', (nodeId) => {
    expectInvalid({ nodeId }, 'node id');
  });

  it.each(['nohost', 'host:', ':7002', 'host:99999', 'host:port', 'nats://host:4222'])(
    'rejects endpoint %j, which is not host:port, as invalid',
    (endpoint) => {
      expectInvalid({ endpoint }, 'host:port');
    },
  );

  it('rejects a served endpoint that is not host:port as invalid', () => {
    expectInvalid({ endpoints: ['127.0.0.2:7002', 'nohost'] }, 'nohost');
  });

  it('rejects more than 64 served endpoints as invalid', () => {
    expectInvalid({ endpoints: Array.from({ length: 65 }, (_, i) => `127.0.0.1:${7000 + i}`) });
  });

  it('rejects capacity 0 as invalid', () => {
    expectInvalid({ capacity: 0 }, 'capacity');
  });

  it.each([0, 9, 60_001])('rejects period %s ms, outside 10..60000, as invalid', (periodMs) => {
    expectInvalid({ periodMs }, 'period');
  });

  it('accepts the periods 10 ms and 60000 ms at the edges of the range', () => {
    for (const periodMs of [10, 60_000]) expect(isRejected(decodeReport(encodeReport(report({ periodMs }))))).toBe(false);
  });

  it('rejects an unknown status number as invalid', () => {
    // Field 10 (status) set again to 99; the last value of a field wins in protobuf.
    const bytes = withVarintField(encodeReport(report()), 10, 99);
    expectRejected(decodeReport(bytes), 'invalid');
  });

  it('rejects a report without a status (NODE_STATUS_UNSPECIFIED) as invalid', () => {
    expectInvalid({ status: 'BOGUS' as ReportStatus }, 'status');
  });

  it('rejects an empty cluster as invalid', () => {
    expectInvalid({ cluster: '' }, 'cluster');
  });

  it('rejects a service name that is not a protobuf name as invalid', () => {
    expectInvalid({ services: ['bank.Banking', 'bank/Banking'] }, 'services');
  });

  it('rejects counts beyond Number.MAX_SAFE_INTEGER as invalid rather than rounding them', () => {
    expectInvalid({ incarnation: 2 ** 60 }, 'incarnation');
    expectInvalid({ seq: 2 ** 54 }, 'seq');
  });

  it('rejects a negative loop delay as invalid', () => {
    expectInvalid({ loopDelayMs: -1 });
  });
});

describe('isValidNodeId', () => {
  it('accepts letters, digits, _ and - up to 64 characters', () => {
    expect(isValidNodeId('node_1-eu')).toBe(true);
    expect(isValidNodeId('x'.repeat(64))).toBe(true);
  });

  it('refuses characters that would break a NATS subject token', () => {
    for (const id of ['a.b', 'a*', 'a>', 'a b', '']) expect(isValidNodeId(id)).toBe(false);
  });
});

describe('decodeReport on arbitrary bytes (property)', () => {
  const valid = encodeReport(report());

  const mutated = mutationsOf(valid);

  const anyBytes = fc.oneof(
    fc.uint8Array({ maxLength: 512 }),
    mutated,
    mutated.map((b) => Buffer.from(b)),
  );

  it('never throws, and returns either a rejection or a report that passes every validation rule', () => {
    fc.assert(
      fc.property(anyBytes, (bytes) => {
        const r = decodeReport(bytes);
        if (isRejected(r)) {
          expect(['malformed', 'invalid']).toContain(r.reason);
          expect(typeof r.message).toBe('string');
        } else {
          expect(satisfiesRules(r), JSON.stringify(r)).toBe(true);
        }
      }),
      { numRuns: 10_000 },
    );
  });
});
