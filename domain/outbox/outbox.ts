import { context, trace } from '@opentelemetry/api';
import { buildEvent, type NewEvent } from './build-event';
import { createEventIdGenerator } from './event-id';
import type { OutboxEvent } from './event';
import type { EventRegistry } from './event-registry';
import { applyOutboxDefaults, type OutboxOptions } from './options';
import type { OutboxWriterStore } from './store';
import { injectTraceContext, inSpan } from './tracing';

export interface Outbox<Tx> {
  /**
   * Validates the event and inserts it in the caller's open transaction. Throws an OutboxError
   * (and writes nothing) when the event is invalid: let it propagate so the transaction aborts.
   */
  add(event: NewEvent, tx: Tx): Promise<OutboxEvent>;
}

export function createOutbox<Tx>(config: { store: OutboxWriterStore<Tx>; registry: EventRegistry } & OutboxOptions): Outbox<Tx> {
  const { store, registry, ...rest } = config;
  const options = applyOutboxDefaults(rest);
  const newId = createEventIdGenerator();
  return {
    add(event: NewEvent, tx: Tx): Promise<OutboxEvent> {
      return inSpan('outbox.add', context.active(), { 'txoutbox.event_type': String(event?.type) }, async () => {
        // The write's trace context goes with the event, unless the caller set one.
        const headers = event?.headers?.traceparent === undefined ? { ...event?.headers, ...injectTraceContext(context.active()) } : event.headers;
        const built = await buildEvent({ ...event, headers }, registry, options, newId);
        trace.getActiveSpan()?.setAttribute('txoutbox.event_id', built.id);
        const sequence = await store.insert(built, tx);
        return { ...built, sequence };
      });
    },
  };
}
