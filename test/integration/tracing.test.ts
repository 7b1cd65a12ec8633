import * as grpc from '@grpc/grpc-js';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src';
import { metadataSetter, tracingOn } from '../../src/tracing';
import { bankClient, callError, plainBankClient, plainSecuritiesClient, startBrokerGroup, unary, waitFor } from '../helpers/brokers';
import { natsForSuite } from '../helpers/suite';
import { installTestTracing, type RecordedSpan, type TestTracerProvider } from '../helpers/tracing';

describe('tracing through @opentelemetry/api (in-process brokers, an in-memory tracing sink)', () => {
  const nats = natsForSuite();
  let n1: Broker;
  let n2: Broker;
  let sink: { provider: TestTracerProvider; uninstall: () => void };

  /** The spans peerbroker made on `node` for `method`, since `from`. */
  const callSpans = (node: string, method: string, from = 0): RecordedSpan[] =>
    sink.provider.spans.slice(from).filter((s) => s.attributes['peerbroker.node'] === node && s.name === method);

  beforeAll(async () => {
    // Brokers start before the provider is registered: they pick it up at their next call.
    // n1 hosts Securities only: Banking calls to it move to n2 (redirected, or forwarded for plain clients).
    [n1, n2] = await startBrokerGroup(
      ['n1', 'n2'],
      { nats: [nats().url], cluster: 'tracing', periodMs: 100 },
      { n1: { services: ['bank.Securities'], forwardLegacy: true } },
    );
    expect(tracingOn()).toBe(false);
    sink = installTestTracing();
    expect(tracingOn()).toBe(true);
  });

  afterAll(() => sink?.uninstall());

  it("makes a span per call on the node that runs it, a child of the caller's, with the decision", async () => {
    const from = sink.provider.spans.length;
    const tracer = trace.getTracer('test');
    const caller = await tracer.startActiveSpan('caller', async (span) => {
      await unary(bankClient([n2.endpoint]), 'GetBalance', { accountId: 'a1' });
      span.end();
      return span.spanContext();
    });
    const [s] = callSpans('n2', 'bank.Banking/GetBalance', from);
    expect(s).toMatchObject({
      kind: SpanKind.SERVER,
      traceId: caller.traceId,
      parentSpanId: caller.spanId,
      ended: true,
      attributes: { 'rpc.system': 'grpc', 'rpc.service': 'bank.Banking', 'rpc.method': 'GetBalance', 'peerbroker.decision': 'local', 'rpc.grpc.status_code': 0 },
    });
    expect(s.events.map((e) => e.name)).toEqual(['peerbroker.started']);
  });

  it('keeps the trace across a redirect: both nodes make a span under the same caller, and the caller gets an event per redirect', async () => {
    const from = sink.provider.spans.length;
    const tracer = trace.getTracer('test');
    const { ctx, events } = await tracer.startActiveSpan('caller', async (span) => {
      const r = await unary(bankClient([n1.endpoint]), 'GetBalance', { accountId: 'a1' });
      expect(r.servedBy).toBe('n2');
      span.end();
      return { ctx: span.spanContext(), events: sink.provider.spans.find((x) => x.spanId === span.spanContext().spanId)!.events };
    });
    const [redirected] = callSpans('n1', 'bank.Banking/GetBalance', from);
    const [ran] = callSpans('n2', 'bank.Banking/GetBalance', from);
    expect(redirected).toMatchObject({
      traceId: ctx.traceId,
      parentSpanId: ctx.spanId,
      ended: true,
      attributes: {
        'peerbroker.decision': 'redirect',
        'peerbroker.reason': 'service',
        'peerbroker.target.node': 'n2',
        'peerbroker.target.endpoint': n2.endpoint,
        'rpc.grpc.status_code': grpc.status.RESOURCE_EXHAUSTED,
      },
    });
    // The follow-up attempt carried the same traceparent.
    expect(ran).toMatchObject({ traceId: ctx.traceId, parentSpanId: ctx.spanId, attributes: { 'peerbroker.decision': 'local', 'peerbroker.hops': 1 } });
    expect(events).toEqual([
      {
        name: 'peerbroker.redirect',
        attributes: { 'peerbroker.from': n1.endpoint, 'peerbroker.to': n2.endpoint, 'peerbroker.to.node': 'n2', 'peerbroker.reason': 'service', 'peerbroker.hop': 1 },
      },
    ]);
  });

  it("carries the trace through a forward: the peer's span is a child of the forwarding node's", async () => {
    const from = sink.provider.spans.length;
    // A plain client of another stack that sends W3C trace context itself.
    const parent = trace.getTracer('test').startSpan('plain caller');
    const md = new grpc.Metadata();
    propagation.inject(trace.setSpan(context.active(), parent), md, metadataSetter);
    expect((await unary(plainBankClient(n1.endpoint), 'GetBalance', { accountId: 'a1' }, { metadata: md })).servedBy).toBe('n2');
    parent.end();
    await waitFor(() => callSpans('n1', 'bank.Banking/GetBalance', from)[0]?.ended, 2_000, 10, "n1's span to end");
    const [forwarded] = callSpans('n1', 'bank.Banking/GetBalance', from);
    const [ran] = callSpans('n2', 'bank.Banking/GetBalance', from);
    expect(forwarded).toMatchObject({
      traceId: parent.spanContext().traceId,
      parentSpanId: parent.spanContext().spanId,
      attributes: { 'peerbroker.decision': 'forward', 'peerbroker.reason': 'service', 'peerbroker.target.node': 'n2', 'rpc.grpc.status_code': 0 },
    });
    expect(ran).toMatchObject({ traceId: parent.spanContext().traceId, parentSpanId: forwarded.spanId, attributes: { 'peerbroker.decision': 'local' } });
  });

  it('records a refused call as an error with its reason', async () => {
    const from = sink.provider.spans.length;
    const md = new grpc.Metadata();
    md.set('peerbroker-session', 'not a token');
    await callError(unary(plainSecuritiesClient(n1.endpoint), 'GetQuote', { symbol: 'ACME' }, { metadata: md }));
    const [s] = callSpans('n1', 'bank.Securities/GetQuote', from);
    expect(s).toMatchObject({
      ended: true,
      status: { code: SpanStatusCode.ERROR },
      attributes: { 'peerbroker.decision': 'reject', 'peerbroker.reason': 'malformed-token', 'rpc.grpc.status_code': grpc.status.INVALID_ARGUMENT },
    });
  });
});
