import { context, defaultTextMapGetter, defaultTextMapSetter, ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Context } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

/**
 * OpenTelemetry for the outbox: the trace context of `outbox.add()` travels in the envelope
 * (`traceparent`/`tracestate`), is continued by the relay and the publish activity, and ends up in
 * the Kafka message's `traceparent` header. Without an OpenTelemetry SDK registered, every call here
 * is a cheap no-op.
 */
const propagator = new W3CTraceContextPropagator();

export const TRACER_NAME = 'txoutbox';

/** W3C headers of a context (empty when it holds no valid span). */
export function injectTraceContext(ctx: Context): { traceparent?: string; tracestate?: string } {
  const carrier: Record<string, string> = {};
  propagator.inject(ctx, carrier, defaultTextMapSetter);
  const out: { traceparent?: string; tracestate?: string } = {};
  if (carrier.traceparent) out.traceparent = carrier.traceparent;
  if (carrier.tracestate) out.tracestate = carrier.tracestate;
  return out;
}

/** The context carried by W3C headers (the root context when there are none). */
export function extractTraceContext(headers: { traceparent?: string; tracestate?: string }): Context {
  return propagator.extract(ROOT_CONTEXT, { ...headers }, defaultTextMapGetter);
}

/** Runs `work` in a span child of `parent`, active while it runs; records a thrown error on the span. */
export async function inSpan<T>(name: string, parent: Context, attributes: Attributes, work: () => Promise<T>): Promise<T> {
  const tracer = trace.getTracer(TRACER_NAME);
  return tracer.startActiveSpan(name, { attributes }, parent, async (span) => {
    try {
      return await work();
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** The active context, or the one in `headers` when nothing is active (e.g. no Temporal interceptor). */
export function activeOr(headers: { traceparent?: string; tracestate?: string }): Context {
  return trace.getSpan(context.active()) ? context.active() : extractTraceContext(headers);
}
