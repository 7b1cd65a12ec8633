import { status, type Metadata } from '@grpc/grpc-js';
import { context, propagation, SpanKind, SpanStatusCode, trace, type Context } from '@opentelemetry/api';
import type { Decision } from '../policy';
import { metadataGetter, metadataSetter, tracer } from '../tracing';

/** Span attribute names of a call on a node (see README, "Metrics and tracing"). */
export const ATTR = {
  node: 'peerbroker.node',
  decision: 'peerbroker.decision',
  reason: 'peerbroker.reason',
  targetNode: 'peerbroker.target.node',
  targetEndpoint: 'peerbroker.target.endpoint',
  hops: 'peerbroker.hops',
  load: 'peerbroker.load',
  statusCode: 'rpc.grpc.status_code',
} as const;

/**
 * Starts the span of a call on this node, named after its method (`bank.Banking/GetBalance`):
 * a child of the span active here (a server instrumentation's), else of the caller's trace
 * context in the metadata (W3C `traceparent`, read by the registered propagator). Returns the
 * context holding it: the handler runs in it, and a forwarded call carries it on.
 */
export function startCallSpan(nodeId: string, path: string, service: string, md: Metadata, hops: number, load: number): Context {
  const active = context.active();
  const inner = trace.getSpan(active) !== undefined;
  const parent = inner ? active : propagation.extract(active, md, metadataGetter);
  const span = tracer().startSpan(
    path.slice(1),
    {
      kind: inner ? SpanKind.INTERNAL : SpanKind.SERVER,
      attributes: {
        'rpc.system': 'grpc',
        'rpc.service': service,
        'rpc.method': path.slice(service.length + 2),
        [ATTR.node]: nodeId,
        [ATTR.hops]: hops,
        [ATTR.load]: load,
      },
    },
    parent,
  );
  return trace.setSpan(parent, span);
}

/** Records the decision on the call's span; a redirect or refusal ends it (the call ends here). */
export function traceDecision(ctx: Context, d: Decision, forwarded: boolean): void {
  const span = trace.getSpan(ctx)!;
  if (d.kind === 'local') {
    span.setAttribute(ATTR.decision, 'local');
    return;
  }
  if (d.kind === 'redirect') {
    span.setAttributes({
      [ATTR.decision]: forwarded ? 'forward' : 'redirect',
      [ATTR.reason]: d.reason,
      [ATTR.targetNode]: d.peer.nodeId,
      [ATTR.targetEndpoint]: d.peer.endpoint,
    });
    if (!forwarded) {
      span.setAttribute(ATTR.statusCode, status.RESOURCE_EXHAUSTED);
      span.end();
    }
    return;
  }
  span.setAttributes({ [ATTR.decision]: 'reject', [ATTR.reason]: d.reason, [ATTR.statusCode]: d.code });
  span.setStatus({ code: SpanStatusCode.ERROR, message: d.message });
  span.end();
}

/** Marks a moment of a call's life on its span (`peerbroker.started`: it got its slot). */
export function traceEvent(ctx: Context, name: string): void {
  trace.getSpan(ctx)!.addEvent(name);
}

/** Records the status a call ended with on its span. */
export function traceStatus(ctx: Context, code: number, message?: string): void {
  const span = trace.getSpan(ctx)!;
  span.setAttribute(ATTR.statusCode, code);
  if (code !== status.OK) span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/** Ends the span of a call that ran here or was forwarded. */
export function traceEnd(ctx: Context): void {
  trace.getSpan(ctx)!.end();
}

/** Puts the context of the call's span into a forwarded call's metadata, so the peer's span is its child. */
export function injectTrace(ctx: Context, md: Metadata): void {
  propagation.inject(ctx, md, metadataSetter);
}

/** Runs `fn` with the call's span active, so the handler's own spans and calls join its trace. */
export function runTraced(ctx: Context, fn: () => void): void {
  context.with(ctx, fn);
}
