import { OutboxStatus, silentLogger, type Logger, type OutboxEvent, type OutboxEventStore } from '../domain/outbox';
import type { FastPathResult } from '../workers/relay/fast-path';

export interface PublishRunDeps {
  store: Pick<OutboxEventStore, 'get'>;
  /**
   * Publishes a key's run as one group under a claim of its own (a FastPath with `everyEvent` over a
   * producer of the worker's). @default none: no run is published, and each event of a key goes
   * through its own publish workflow, one at a time
   */
  runs?: { publish(events: readonly OutboxEvent[]): Promise<FastPathResult> };
  logger?: Logger;
}

/**
 * A key sequencer's run: the next events of one key, in sequence order, published in one Kafka
 * request (one partition, together or not at all) and recorded in the store in one statement.
 * Returns the ids published, which are the run's first events, in order; whatever is not published
 * (a failed send, an event someone else owns, a key not clear in the store) is released again and left
 * to the events' own publish workflows, which the sequencer runs one at a time as before.
 */
export function createPublishRun(deps: PublishRunDeps): (eventIds: readonly string[]) => Promise<string[]> {
  const logger = deps.logger ?? silentLogger;
  return async function publishRun(eventIds: readonly string[]): Promise<string[]> {
    if (deps.runs === undefined || eventIds.length === 0) return [];
    const loaded = await Promise.all(eventIds.map((id) => deps.store.get(id)));
    const pending = loaded.filter((e): e is OutboxEvent => e !== null && e.status === OutboxStatus.pending);
    const result = await deps.runs.publish(pending);
    if (result.fallback.length > 0 || result.skipped.length > 0) {
      logger.info('key run: published part of it; the rest goes one event at a time', { asked: eventIds.length, published: result.published.length });
    }
    return result.published.map((e) => e.id);
  };
}
