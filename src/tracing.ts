import type { Metadata } from '@grpc/grpc-js';
import { context, propagation, ProxyTracerProvider, trace, type Span, type TextMapGetter, type TextMapSetter, type Tracer } from '@opentelemetry/api';

// What the API hands out while no provider is registered (the same object for every proxy).
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/**
 * True when the application registered a tracer provider (`trace.setGlobalTracerProvider`,
 * which an OpenTelemetry SDK does). Spans are made only then: this check costs some tens of
 * nanoseconds a call, a no-op span several times that, with its attributes.
 */
export function tracingOn(): boolean {
  const p = trace.getTracerProvider() as { getDelegate?: () => unknown };
  return typeof p.getDelegate !== 'function' || p.getDelegate() !== NOOP_PROVIDER;
}

/** The tracer of peerbroker's spans and events (from the global provider). */
export function tracer(): Tracer {
  return trace.getTracer('peerbroker');
}

/** Writes trace context (`traceparent`, `tracestate`, ...) into gRPC metadata. */
export const metadataSetter: TextMapSetter<Metadata> = {
  set: (md, key, value) => md.set(key, value),
};

/** Reads trace context from gRPC metadata (binary values are left out). */
export const metadataGetter: TextMapGetter<Metadata> = {
  keys: (md) => Object.keys(md.getMap()),
  get: (md, key) => {
    const v = md.get(key).filter((x): x is string => typeof x === 'string');
    return v.length === 0 ? undefined : v.length === 1 ? v[0] : v;
  },
};

/**
 * The caller's span, for a call the stub is about to make: its context goes into the call's
 * metadata (by the registered propagator, unless an instrumentation put one there already),
 * and every attempt carries that copy, so a redirected call stays in the same trace.
 */
export function traceOutgoing(md: Metadata): Span | undefined {
  const active = context.active();
  const span = trace.getSpan(active);
  if (span === undefined) return undefined;
  if (md.get('traceparent').length === 0) propagation.inject(active, md, metadataSetter);
  return span;
}
