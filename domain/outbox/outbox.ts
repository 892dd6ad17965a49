import { buildEvent, type NewEvent } from './build-event';
import { createEventIdGenerator } from './event-id';
import type { OutboxEvent } from './event';
import type { EventRegistry } from './event-types';
import { applyOutboxDefaults, type OutboxOptions } from './options';
import type { OutboxStore } from './store';

export interface Outbox<Tx> {
  /**
   * Validates the event and inserts it in the caller's open transaction. Throws an OutboxError
   * (and writes nothing) when the event is invalid: let it propagate so the transaction aborts.
   */
  add(event: NewEvent, tx: Tx): Promise<OutboxEvent>;
}

export function createOutbox<Tx>(config: { store: OutboxStore<Tx>; registry: EventRegistry } & OutboxOptions): Outbox<Tx> {
  const { store, registry, ...rest } = config;
  const options = applyOutboxDefaults(rest);
  const newId = createEventIdGenerator();
  return {
    async add(event: NewEvent, tx: Tx): Promise<OutboxEvent> {
      const built = await buildEvent(event, registry, options, newId);
      await store.insert(built, tx);
      return built;
    },
  };
}
