import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type ContextManager,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';

/**
 * A tracing sink for tests, written against @opentelemetry/api's interfaces only (what an SDK
 * implements): a tracer provider that records spans in memory, a W3C `traceparent` propagator
 * and a context manager on AsyncLocalStorage. It fakes where spans go, not gRPC or NATS.
 */

/** A span as recorded. */
export interface RecordedSpan {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Attributes;
  events: Array<{ name: string; attributes: Attributes }>;
  status: SpanStatus;
  ended: boolean;
}

class TestSpan implements Span {
  constructor(
    readonly record: RecordedSpan,
    private readonly ctx: SpanContext,
  ) {}
  spanContext(): SpanContext {
    return this.ctx;
  }
  setAttribute(key: string, value: Attributes[string]): this {
    this.record.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    Object.assign(this.record.attributes, attributes);
    return this;
  }
  addEvent(name: string, attributes?: Attributes | unknown): this {
    this.record.events.push({ name, attributes: (typeof attributes === 'object' && attributes !== null ? attributes : {}) as Attributes });
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.record.status = status;
    return this;
  }
  updateName(name: string): this {
    this.record.name = name;
    return this;
  }
  end(): void {
    if (this.record.ended) throw new Error(`span '${this.record.name}' ended twice`);
    this.record.ended = true;
  }
  isRecording(): boolean {
    return !this.record.ended;
  }
  recordException(): void {}
}

class TestTracer implements Tracer {
  constructor(private readonly spans: RecordedSpan[]) {}

  startSpan(name: string, options: SpanOptions = {}, ctx: Context = context.active()): Span {
    const parent = trace.getSpanContext(ctx);
    const sc: SpanContext = { traceId: parent?.traceId ?? randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), traceFlags: TraceFlags.SAMPLED };
    const record: RecordedSpan = {
      name,
      kind: options.kind ?? SpanKind.INTERNAL,
      traceId: sc.traceId,
      spanId: sc.spanId,
      parentSpanId: parent?.spanId,
      attributes: { ...options.attributes },
      events: [],
      status: { code: SpanStatusCode.UNSET },
      ended: false,
    };
    this.spans.push(record);
    return new TestSpan(record, sc);
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, ...args: unknown[]): ReturnType<F> {
    const fn = args[args.length - 1] as F;
    const options = (args.length > 1 ? args[0] : {}) as SpanOptions;
    const span = this.startSpan(name, options);
    return context.with(trace.setSpan(context.active(), span), () => fn(span)) as ReturnType<F>;
  }
}

/** Records every span started through it. */
export class TestTracerProvider implements TracerProvider {
  readonly spans: RecordedSpan[] = [];
  getTracer(): Tracer {
    return new TestTracer(this.spans);
  }
}

/** W3C Trace Context: `traceparent: 00-<trace id>-<span id>-<flags>`. */
export class TraceparentPropagator implements TextMapPropagator {
  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    const sc = trace.getSpanContext(ctx);
    if (sc) setter.set(carrier, 'traceparent', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags}`);
  }
  extract(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    const v = getter.get(carrier, 'traceparent');
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0([01])$/.exec(Array.isArray(v) ? v[0] : (v ?? ''));
    return m ? trace.setSpanContext(ctx, { traceId: m[1], spanId: m[2], traceFlags: Number(m[3]), isRemote: true }) : ctx;
  }
  fields(): string[] {
    return ['traceparent'];
  }
}

/** Context propagation through async calls, as an SDK's AsyncLocalStorage manager does. */
export class AlsContextManager implements ContextManager {
  private readonly als = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.als.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.als.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const f = target as unknown as (...a: unknown[]) => unknown;
    return ((...a: unknown[]) => this.with(ctx, () => f(...a))) as unknown as T;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.als.disable();
    return this;
  }
}

/** Registers the test sink globally (this test process only); returns the provider and how to take it all out. */
export function installTestTracing(): { provider: TestTracerProvider; uninstall: () => void } {
  const provider = new TestTracerProvider();
  context.setGlobalContextManager(new AlsContextManager());
  propagation.setGlobalPropagator(new TraceparentPropagator());
  trace.setGlobalTracerProvider(provider);
  return {
    provider,
    uninstall: () => {
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}
