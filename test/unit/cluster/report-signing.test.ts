import fc from 'fast-check';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import type { NatsConnection } from 'nats';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { peerMembers } from '../../../src/broker/broker-service';
import { ReportIntake } from '../../../src/broker/report-intake';
import { ReportFilter } from '../../../src/cluster/report-filter';
import { ClusterKey } from '../../../src/cluster/cluster-key';
import { encodeReport, isRejected, MAX_REPORT_BYTES, type LoadReport, type Rejected } from '../../../src/cluster/report-codec';
import { openReport, sealReport } from '../../../src/cluster/report-signing';
import {
  ConfigRejectedError,
  ConfigWatcher,
  decodeConfigMessage,
  encodeConfigMessage,
  newConfigMessage,
  type ConfigMessage,
} from '../../../src/cluster/runtime-config';
import { ConfigError } from '../../../src/errors';
import { PeerView } from '../../../src/cluster/peer-view';
import { createLogger, RateLimitedLog, type Logger } from '../../../src/log';
import { mutationsOf, varint } from '../../helpers/bytes';

const SECRET = 'b1946ac92492d2347c6235b4d2611184-test-only';
const OTHER = '6f5902ac237024bdd0c176cb93063dc4-test-only';
const key = ClusterKey.fromSecrets([SECRET]);
const otherKey = ClusterKey.fromSecrets([OTHER]);

/**
 * The broker's report path for node n1 of cluster 'sig' with the cluster key: the reporter
 * thread's filter, one tick per message, then the main thread's intake → peer view.
 */
function reportPath(logger: Logger = createLogger({ level: 'silent' })) {
  const view = new PeerView({ offlineAfterPeriods: 3, forgetAfterMs: 60_000 });
  // A clock that moves a whole budget window between messages (reading itself takes no time on it).
  let now = 0;
  const filter = new ReportFilter({ cluster: 'sig', selfId: 'n1', key, maxClockSkewMs: 30_000, maxAgeMs: 60_000, windowMs: 50, clock: () => now });
  const intake = new ReportIntake('sig', view, logger, new RateLimitedLog(10_000));
  const receive = (token: string, data: Uint8Array) => {
    filter.offer(token, data, Date.now());
    now += 50;
    const batch = filter.take(Date.now(), 50);
    if (batch) intake.receive(batch);
  };
  return { view, receive };
}

function report(over: Partial<LoadReport> = {}): LoadReport {
  return {
    cluster: 'sig',
    nodeId: 'n2',
    endpoint: '127.0.0.2:7002',
    incarnation: Date.now() - 1_000,
    seq: 7,
    sentAtMs: Date.now(),
    load: 0.25,
    inFlight: 1,
    capacity: 4,
    status: 'ONLINE',
    services: ['bank.Banking'],
    endpoints: ['127.0.0.2:7002'],
    periodMs: 500,
    queued: 0,
    loopDelayMs: 1,
    callsRun: 10,
    callsRedirected: 2,
    maxQueue: 256,
    takeover: true,
    ...over,
  };
}

function rejected(r: LoadReport | Rejected): Rejected {
  if (!isRejected(r)) throw new Error(`expected a rejection, got a report of ${r.nodeId}`);
  return r;
}

describe('ClusterKey', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peerbroker-key-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads a key file of one secret per line, ignoring comments and blank lines; the first signs', () => {
    const file = path.join(dir, 'two.key');
    fs.writeFileSync(file, `# rotated 2026-11\n\n${OTHER}\n${SECRET}\n`);
    const k = ClusterKey.fromFile(file);
    expect(k.id).toBe(otherKey.id);
    const signedByOld = sealReport(encodeReport(report()), key);
    expect(isRejected(openReport(signedByOld, k))).toBe(false);
    expect(rejected(openReport(sealReport(encodeReport(report()), k), key)).reason).toBe('bad-signature');
  });

  it('refuses a short secret, an empty file and an unreadable file, naming the field and never the content', () => {
    const short = path.join(dir, 'short.key');
    fs.writeFileSync(short, 'hunter2\n');
    expect(() => ClusterKey.fromFile(short, 'cluster-key-file')).toThrow(ConfigError);
    try {
      ClusterKey.fromFile(short, 'cluster-key-file');
    } catch (err) {
      expect((err as ConfigError).field).toBe('cluster-key-file');
      expect((err as Error).message).not.toContain('hunter2');
    }
    const empty = path.join(dir, 'empty.key');
    fs.writeFileSync(empty, '# nothing\n');
    expect(() => ClusterKey.fromFile(empty)).toThrow(/holds no key/);
    expect(() => ClusterKey.fromFile(path.join(dir, 'missing.key'))).toThrow(/cannot read .*ENOENT/);
  });

  it('never shows its secret when logged, inspected or serialised', () => {
    expect(JSON.stringify({ k: key })).not.toContain(SECRET);
    expect(inspect(key, { showHidden: true, depth: 5 })).not.toContain(SECRET);
    expect(String(key)).toBe(`[cluster key ${key.id}]`);
    expect(Buffer.from(key.exportSecrets()[0]).toString()).toBe(SECRET);
  });
});

describe('openReport with a cluster key', () => {
  const bytes = encodeReport(report());

  it('accepts a report signed with the key and returns it unchanged', () => {
    expect(openReport(sealReport(bytes, key), key)).toEqual(report({ sentAtMs: expect.any(Number) as unknown as number, incarnation: expect.any(Number) as unknown as number }));
  });

  it('drops a plain (unsigned) report as unsigned', () => {
    expect(rejected(openReport(bytes, key)).reason).toBe('unsigned');
  });

  it('drops garbage as unsigned and an empty or oversized message as malformed, without reading it', () => {
    expect(rejected(openReport(Buffer.from('{"nodeId":"evil","load":0}'), key)).reason).toBe('unsigned');
    expect(rejected(openReport(new Uint8Array(0), key)).reason).toBe('malformed');
    expect(rejected(openReport(new Uint8Array(MAX_REPORT_BYTES + 1024), key)).reason).toBe('malformed');
  });

  it('drops a report signed with another key as bad-signature', () => {
    expect(rejected(openReport(sealReport(bytes, otherKey), key))).toMatchObject({ reason: 'bad-signature', message: expect.stringContaining('unknown key') });
  });

  it('drops a signed report whose content or signature was changed as bad-signature', () => {
    const sealed = sealReport(bytes, key);
    // The report is the envelope's first field; byte 10 lies inside it.
    const tampered = Uint8Array.from(sealed);
    tampered[10] ^= 0x01;
    expect(rejected(openReport(tampered, key)).reason).toBe('bad-signature');
    // A valid signature of one report, attached to another.
    const spliced = sealReportWith(encodeReport(report({ load: 0 })), key.sign('report', bytes), key.id);
    expect(rejected(openReport(spliced, key)).reason).toBe('bad-signature');
  });

  it('drops an envelope without its report or signature field as bad-signature, without throwing', () => {
    // Only alg and key id: protobufjs gives an absent bytes field as an empty Array, not bytes.
    const field = (tag: number[], data: Uint8Array) => [...tag, ...varint(data.length), ...data];
    const bare = Uint8Array.from([...field([0xa2, 0x06], Buffer.from('hmac-sha256')), ...field([0xaa, 0x06], Buffer.from(key.id))]);
    expect(rejected(openReport(bare, key)).reason).toBe('bad-signature');
    const noSignature = Uint8Array.from([...field([0x0a], bytes), ...bare]);
    expect(rejected(openReport(noSignature, key)).reason).toBe('bad-signature');
    const noReport = Uint8Array.from([...field([0x12], key.sign('report', bytes)), ...bare]);
    expect(rejected(openReport(noReport, key)).reason).toBe('bad-signature');
  });

  it('never accepts a config signature as a report signature (each purpose has its own key)', () => {
    const env = sealReport(bytes, key);
    const forged = sealReportWith(bytes, key.sign('config', bytes), key.id);
    expect(isRejected(openReport(env, key))).toBe(false);
    expect(rejected(openReport(forged, key)).reason).toBe('bad-signature');
  });
});

describe('openReport without a cluster key', () => {
  it('decodes a plain report, and unwraps a signed one unchecked', () => {
    const r = report();
    expect(openReport(encodeReport(r), undefined)).toEqual(r);
    expect(openReport(sealReport(encodeReport(r), otherKey), undefined)).toEqual(r);
  });
});

describe('config messages', () => {
  const m = newConfigMessage({ threshold: 0.7 });

  it('round-trip signed with the key, and unsigned without one', () => {
    expect(decodeConfigMessage(encodeConfigMessage(m, key), key)).toEqual(m);
    expect(decodeConfigMessage(encodeConfigMessage(m), undefined)).toEqual(m);
    expect(decodeConfigMessage(encodeConfigMessage(m, key), undefined)).toEqual(m);
  });

  it.each([
    ['an unsigned message', () => encodeConfigMessage(m), 'unsigned'],
    ['a message signed with another key', () => encodeConfigMessage(m, otherKey), 'bad-signature'],
    [
      'a signed message whose values were changed',
      () => {
        const env = JSON.parse(Buffer.from(encodeConfigMessage(m, key)).toString());
        env.payload = Buffer.from(JSON.stringify({ ...m, values: { threshold: 0 } })).toString('base64');
        return Buffer.from(JSON.stringify(env));
      },
      'bad-signature',
    ],
    [
      "a report's signature on a config message",
      () => {
        const json = Buffer.from(JSON.stringify(m));
        return Buffer.from(JSON.stringify({ alg: 'hmac-sha256', keyId: key.id, payload: json.toString('base64'), signature: key.sign('report', json).toString('base64') }));
      },
      'bad-signature',
    ],
    ['bytes that are not JSON', () => Buffer.from([0xff, 0x00, 0x7b]), 'malformed'],
  ])('with a key, drop %s as %s', (_what, make, reason) => {
    expect(() => decodeConfigMessage(make(), key)).toThrow(ConfigRejectedError);
    try {
      decodeConfigMessage(make(), key);
    } catch (err) {
      expect((err as ConfigRejectedError).reason).toBe(reason);
    }
  });
});

function sealReportWith(reportBytes: Uint8Array, signature: Uint8Array, keyId: string): Uint8Array {
  // Field 1 (report), field 2 (signature), field 100 (alg), field 101 (key id), by hand.
  const field = (tag: number[], data: Uint8Array) => [...tag, ...varint(data.length), ...data];
  return Uint8Array.from([
    ...field([0x0a], reportBytes),
    ...field([0x12], signature),
    ...field([0xa2, 0x06], Buffer.from('hmac-sha256')),
    ...field([0xaa, 0x06], Buffer.from(keyId)),
  ]);
}


// ---------------------------------------------------------------------------
// Hostile input: the broker's own report path (openReport → PeerView), 10 000 cases.

describe('hostile messages on the load subjects (property, through the report path with a cluster key)', () => {
  const { view, receive: onReport } = reportPath();
  // A legitimate peer first: what hostile input must not change.
  const legit = report();
  onReport('n2', sealReport(encodeReport(legit), key));

  const snapshot = () =>
    JSON.stringify({
      peers: view.peers.map((p) => ({ ...p, services: [...p.services] })),
      // What Members answers, less what only the clock changes (report age, UNKNOWN when stale).
      members: peerMembers(view, performance.now()).map((m) => ({ ...m, reportAgeMs: 0, status: '' })),
    });
  const dropped = () => Object.values(view.dropped).reduce((a, b) => a + b, 0);

  const sealed = sealReport(encodeReport(legit), key);
  const plainEvil = encodeReport(report({ nodeId: 'evil', endpoint: '127.0.0.66:6666', endpoints: ['127.0.0.66:6666'], load: 0, seq: 1_000 }));
  const newerN2 = encodeReport(report({ seq: legit.seq + 1, load: 0, status: 'LEAVING' }));
  const bases = [sealed, plainEvil, sealReport(plainEvil, otherKey), sealReport(newerN2, otherKey), newerN2];

  const mutated = mutationsOf(...bases);
  const oversized = fc.integer({ min: MAX_REPORT_BYTES + 257, max: 4 * MAX_REPORT_BYTES }).map((n) => {
    const b = new Uint8Array(n);
    b.set(sealed, 0);
    return b;
  });
  const payload = fc.oneof(
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 512 }) },
    { weight: 6, arbitrary: mutated },
    { weight: 1, arbitrary: mutated.map((b) => Buffer.from(b)) },
    { weight: 1, arbitrary: oversized },
    // Replays of the legitimate signed report, on its subject and on others.
    { weight: 1, arbitrary: fc.constant(sealed) },
  );
  const token = fc.oneof(fc.constantFrom('n2', 'n3', 'evil', 'n1'), fc.stringMatching(/^[A-Za-z0-9_-]{1,80}$/));

  it('never throws, drops every message (counted once) and never changes the view', () => {
    const before = snapshot();
    let sent = 0;
    const dropsBefore = dropped();
    fc.assert(
      fc.property(token, payload, (t, data) => {
        const d0 = dropped();
        onReport(t, data);
        sent++;
        expect(dropped()).toBe(d0 + 1);
        expect(snapshot()).toBe(before);
      }),
      { numRuns: 10_000 },
    );
    expect(dropped() - dropsBefore).toBe(sent);
    expect(peerMembers(view, performance.now()).map((m) => m.nodeId)).toEqual(['n2']);
    // Most of it never got past the signature check (about 5 in 6 of the payloads are neither
    // replays nor oversized; some of those fail earlier, on framing).
    expect(view.dropped.unsigned + view.dropped['bad-signature']).toBeGreaterThan(sent * 0.7);
  });

  it('drops any config message that is not signed with the key (property)', () => {
    const signed = encodeConfigMessage(newConfigMessage({ threshold: 0.9 }), key);
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 512 }),
      fc.json().map((j) => Buffer.from(j)),
      fc.record({ flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }) }).map(({ flips }) => {
        const b = Uint8Array.from(signed);
        for (const [i, x] of flips) b[i % b.length] ^= x;
        return b;
      }),
    );
    fc.assert(
      fc.property(bytes, (data) => {
        let decoded: unknown;
        try {
          decoded = decodeConfigMessage(data, key);
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigRejectedError);
          return;
        }
        // A flip that lands in JSON white space or in base64 padding bits leaves the signed content as it was.
        expect(decoded).toEqual(decodeConfigMessage(signed, key));
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('ConfigWatcher', () => {
  it('applies each signed version once, and drops replays of older changes, far-future ones and unsigned ones', async () => {
    const fakeNc = {
      subscribe: () => ({ unsubscribe() {} }),
      jetstream: () => {
        throw new Error('no JetStream here');
      },
    } as unknown as NatsConnection;
    const applied: string[] = [];
    const drops: Array<string | undefined> = [];
    const w = new ConfigWatcher(fakeNc, 'sig', (m) => applied.push(m.version), (_r, d) => drops.push(d), key);
    await w.start();
    const deliver = (m: ConfigMessage, signed = true) =>
      (w as unknown as { deliver(d: Uint8Array): void }).deliver(encodeConfigMessage(m, signed ? key : undefined));
    const now = Date.now();
    deliver({ version: 'v2', setAt: now, values: { threshold: 0.6 } });
    deliver({ version: 'v2', setAt: now, values: { threshold: 0.6 } });
    deliver({ version: 'v1', setAt: now - 60_000, values: { threshold: 0.1 } });
    deliver({ version: 'v9', setAt: now + 3_600_000, values: { threshold: 0.9 } });
    deliver({ version: 'v3', setAt: now + 1, values: { threshold: 0.7 } }, false);
    deliver({ version: 'v4', setAt: now + 2, values: { threshold: 0.8 } });
    w.stop();
    expect(applied).toEqual(['v2', 'v4']);
    expect(drops.filter(Boolean)).toEqual(['replay', 'future', 'unsigned']);
  });
});

describe('the report path with a cluster key, fed signed reports that must still be dropped', () => {
  it('drops wrong-cluster, far-future, expired, old-incarnation and replayed reports, counts each, and logs each reason once per 10 s naming the subject', () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (s: string) => void lines.push(s) });
    const { view, receive } = reportPath(logger);
    const feed = (token: string, r: LoadReport) => receive(token, sealReport(encodeReport(r), key));
    const now = Date.now();
    feed('n2', report({ incarnation: now - 5_000, seq: 10 }));
    feed('n2', report({ cluster: 'other' }));
    feed('n2', report({ incarnation: now - 5_000, seq: 11, sentAtMs: now + 3_600_000 }));
    feed('n2', report({ incarnation: now - 5_000, seq: 12, sentAtMs: now - 3_600_000 }));
    feed('n2', report({ incarnation: now - 60_000, seq: 99 }));
    feed('n2', report({ incarnation: now - 5_000, seq: 10 }));
    feed('n3', report({ incarnation: now - 5_000, seq: 13 }));
    for (let i = 0; i < 50; i++) receive('evil', encodeReport(report({ nodeId: 'evil' })));
    expect(view.peers.map((p) => [p.nodeId, p.seq])).toEqual([['n2', 10]]);
    expect(view.dropped).toMatchObject({ 'wrong-cluster': 1, future: 1, expired: 1, 'old-incarnation': 1, replay: 1, 'wrong-subject': 1, unsigned: 50 });
    const logged = lines.map((l) => JSON.parse(l) as { msg: string; reason: string; subject: string });
    const unsigned = logged.filter((l) => l.reason === 'unsigned');
    expect(unsigned).toHaveLength(1);
    expect(unsigned[0]).toMatchObject({ msg: 'load report dropped', subject: 'peerbroker.sig.load.evil' });
    expect(logged.find((l) => l.reason === 'future')?.subject).toBe('peerbroker.sig.load.n2');
  });
});
