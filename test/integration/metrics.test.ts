import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src';
import {
  callError,
  followMetadata,
  plainBankClient,
  plainSecuritiesClient,
  startBroker,
  startBrokerProcess,
  unary,
  waitFor,
  type BrokerProcess,
} from '../helpers/brokers';
import { postJson } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { natsForSuite } from '../helpers/suite';

/** One sample of a Prometheus text exposition. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (what `/metrics` serves) into samples. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the sample named `name` whose labels include `labels`; undefined when there is none. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

async function scrape(endpoint: string, path = '/metrics'): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://${endpoint}${path}`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

describe('Prometheus metrics', () => {
  const nats = natsForSuite();

  describe('a broker process with --metrics-listen', () => {
    let n1: BrokerProcess;
    let n2: Broker;
    let metricsAt: string;

    beforeAll(async () => {
      n2 = await startBroker({ nodeId: 'n2', nats: [nats().url], cluster: 'metrics', periodMs: 200 });
      metricsAt = `127.0.0.1:${await freePort()}`;
      // n1 hosts Securities only: its Banking calls go to n2 (redirected, or forwarded for plain clients).
      n1 = await startBrokerProcess({
        nodeId: 'n1',
        nats: [nats().url],
        cluster: 'metrics',
        periodMs: 200,
        capacity: 6,
        extraArgs: ['--metrics-listen', metricsAt, '--services', 'bank.Securities', '--forward-legacy'],
      });
      await waitFor(() => n2.members().find((m) => m.nodeId === 'n1')?.status === 'ONLINE', 10_000, 20, 'n2 to see n1');
      // n1 knows n2 once it can place a Banking call there (it forwards this plain client's).
      await waitFor(async () => (await unary(plainBankClient(n1.endpoint), 'GetBalance', { accountId: 'warm' }).catch(() => undefined))?.servedBy === 'n2', 10_000, 50, 'n1 to see n2');
    });

    afterAll(async () => {
      await n1?.kill9();
    });

    it('counts calls by service, method, decision and reason, and redirects and forwards by target', async () => {
      const securities = plainSecuritiesClient(n1.endpoint);
      const banking = plainBankClient(n1.endpoint);
      for (let i = 0; i < 3; i++) await unary(securities, 'GetQuote', { symbol: 'ACME' });
      // A client that says it follows gets the redirect itself (this one does not follow it).
      for (let i = 0; i < 2; i++) expect((await callError(unary(banking, 'GetBalance', { accountId: 'a' }, { metadata: followMetadata() }))).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect((await unary(banking, 'GetBalance', { accountId: 'a' })).servedBy).toBe('n2');
      const bad = new grpc.Metadata();
      bad.set('peerbroker-session', 'not a token');
      expect((await callError(unary(securities, 'GetQuote', { symbol: 'ACME' }, { metadata: bad }))).code).toBe(grpc.status.INVALID_ARGUMENT);

      const { status, type, body } = await scrape(metricsAt);
      expect(status).toBe(200);
      expect(type).toMatch(/^text\/plain/);
      const s = parse(body);
      const calls = (method: string, decision: string, reason: string) =>
        valueOf(s, 'peerbroker_calls_total', { node: 'n1', service: method.split('/')[0], method: method.split('/')[1], decision, reason });
      expect(calls('bank.Securities/GetQuote', 'local', '')).toBe(3);
      expect(calls('bank.Securities/GetQuote', 'reject', 'malformed-token')).toBe(1);
      expect(calls('bank.Banking/GetBalance', 'redirect', 'service')).toBe(2);
      expect(calls('bank.Banking/GetBalance', 'forward', 'service')).toBe(2); // the warm-up call too
      expect(calls('bank.Banking/GetBalance', 'local', '')).toBe(0);
      expect(valueOf(s, 'peerbroker_redirects_total', { node: 'n1', target: 'n2' })).toBe(2);
      expect(valueOf(s, 'peerbroker_forwards_total', { node: 'n1', target: 'n2' })).toBe(2);
    });

    it('shows load, slots, status, peers and their report age, limits, drops and the process metrics', async () => {
      const s = parse((await scrape(metricsAt)).body);
      expect(valueOf(s, 'peerbroker_capacity', { node: 'n1' })).toBe(6);
      expect(valueOf(s, 'peerbroker_max_queue', { node: 'n1' })).toBe(24);
      expect(valueOf(s, 'peerbroker_load', { node: 'n1' })).toBe(0);
      expect(valueOf(s, 'peerbroker_running_calls', { node: 'n1' })).toBe(0);
      expect(valueOf(s, 'peerbroker_queued_calls', { node: 'n1' })).toBe(0);
      expect(valueOf(s, 'peerbroker_status', { node: 'n1', status: 'ONLINE' })).toBe(1);
      expect(valueOf(s, 'peerbroker_status', { node: 'n1', status: 'UNHEALTHY' })).toBe(0);
      expect(valueOf(s, 'peerbroker_peers', { node: 'n1', status: 'ONLINE' })).toBe(1);
      expect(valueOf(s, 'peerbroker_peer_report_age_seconds', { node: 'n1', peer: 'n2' })).toBeLessThan(1);
      expect(valueOf(s, 'peerbroker_reports_dropped_total', { node: 'n1', reason: 'malformed' })).toBe(0);
      expect(valueOf(s, 'peerbroker_takeovers_total', { node: 'n1' })).toBe(0);
      expect(valueOf(s, 'peerbroker_sessions', { node: 'n1' })).toBe(0);
      expect(valueOf(s, 'peerbroker_connections', { node: 'n1' })).toBeGreaterThanOrEqual(1); // the test's clients share one
      expect(valueOf(s, 'peerbroker_max_streams', { node: 'n1' })).toBe(10_000);
      expect(valueOf(s, 'peerbroker_streams_refused_total', { node: 'n1' })).toBe(0);
      expect(valueOf(s, 'peerbroker_process_cpu_user_seconds_total')).toBeGreaterThan(0);
      expect(valueOf(s, 'peerbroker_process_open_fds')).toBeGreaterThan(0);
      // Every series is peerbroker's own.
      expect(s.filter((x) => !x.name.startsWith('peerbroker_'))).toEqual([]);
    });

    it('answers 404 anywhere but /metrics', async () => {
      expect((await scrape(metricsAt, '/')).status).toBe(404);
    });
  });

  describe('in a library: brokers sharing a registry', () => {
    it('registers each broker under its node label, and the process metrics once', async () => {
      const registry = new Registry();
      const [a, b] = await Promise.all(
        ['m1', 'm2'].map((nodeId) =>
          startBroker({ nodeId, nats: [nats().url], cluster: 'metrics-lib', periodMs: 200, metrics: { registry }, httpListen: '127.0.0.1:0' }),
        ),
      );
      expect(a.metrics).toBe(registry);
      await unary(plainSecuritiesClient(b.endpoint), 'GetQuote', { symbol: 'ACME' });
      // A call over HTTP goes through the same gate, and is counted with the others.
      expect((await postJson(b.httpUrl!, '/bank.Securities/GetQuote', { symbol: 'ACME' })).status).toBe(200);
      const text = await registry.metrics();
      const s = parse(text);
      expect(valueOf(s, 'peerbroker_calls_total', { node: 'm2', method: 'GetQuote', decision: 'local' })).toBe(2);
      expect(valueOf(s, 'peerbroker_calls_total', { node: 'm1', method: 'GetQuote', decision: 'local' })).toBe(0);
      expect(text.match(/^# TYPE peerbroker_process_cpu_user_seconds_total/gm)).toHaveLength(1);
      // A stopped broker's series go.
      await a.stop();
      expect(valueOf(parse(await registry.metrics()), 'peerbroker_capacity', { node: 'm1' })).toBeUndefined();
      expect(valueOf(parse(await registry.metrics()), 'peerbroker_capacity', { node: 'm2' })).toBe(64);
    });
  });
});
