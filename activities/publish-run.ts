import { OutboxStatus, silentLogger, type Logger, type OutboxEvent, type OutboxEventStore, type PublishResult } from '../domain/outbox';
import type { FastPathResult } from '../workers/relay/fast-path';
import type { EnqueuedEvent } from '../workflows/signals';
import type { PublishReceipt } from '../workflows/types';

export interface PublishRunDeps {
  store: Pick<OutboxEventStore, 'get' | 'openEventsOfKey'>;
  /**
   * Publishes a key's run as one group under a claim of its own (a FastPath with `everyEvent` over a
   * producer of the worker's). @default none: no run is published, and each event of a key goes
   * through its own publish workflow, one at a time
   */
  runs?: { publish(events: readonly OutboxEvent[]): Promise<FastPathResult> };
  logger?: Logger;
}

/** What a run did: the ids it published, and the key's next open events in the store after them. */
export interface RunResult {
  /** The run's first events, in order. */
  published: string[];
  /**
   * Up to `readAhead` of the key's open events after the last one published, lowest first: the
   * sequencer takes them as if the relay had sent them, so a key whose backlog outgrew its buffer
   * keeps draining without waiting for a sweep. Empty when nothing was published.
   */
  following: EnqueuedEvent[];
  /**
   * The receipts of `published`, in its order, as the store recorded them, when the run recorded
   * every one: each event's own workflow records its receipt without asking the store. Absent
   * otherwise (and from older workers): those workflows read the store.
   */
  receipts?: PublishReceipt[];
}

/**
 * A key sequencer's run: the next events of one key, in sequence order, published in one Kafka
 * request (one partition, together or not at all) and recorded in the store in one statement.
 * Whatever it does not publish (a failed send, an event someone else owns, a key not clear in the
 * store) is released again and left to the events' own publish workflows, which the sequencer runs
 * one at a time as before.
 */
export function createPublishRun(deps: PublishRunDeps): (eventIds: readonly string[], readAhead?: number) => Promise<RunResult> {
  const logger = deps.logger ?? silentLogger;
  return async function publishRun(eventIds: readonly string[], readAhead = 0): Promise<RunResult> {
    const none = { published: [], following: [] };
    const { runs } = deps;
    if (runs === undefined || eventIds[0] === undefined) return none;
    const first = await deps.store.get(eventIds[0]);
    if (first === null || first.sequence === null) return none;
    // Two reads, whatever the run's length: its first event (its key), then the key's open events
    // from it on, the run's and up to `readAhead` after them.
    const asked = new Set(eventIds);
    const ahead = Math.max(0, readAhead);
    const open = await deps.store.openEventsOfKey(first.topic, first.key, first.sequence - 1, eventIds.length + ahead);
    const result = await runs.publish(open.filter((e) => asked.has(e.id) && e.status === OutboxStatus.pending));
    if (result.fallback.length > 0 || result.skipped.length > 0) {
      logger.info('key run: published part of it; the rest goes one event at a time', { asked: eventIds.length, published: result.published.length });
    }
    const last = result.published[result.published.length - 1]?.sequence;
    if (last === undefined || last === null) return none;
    const following = open.filter((e) => e.sequence !== null && e.sequence > last && !asked.has(e.id)).slice(0, ahead);
    return {
      published: result.published.map((e) => e.id),
      following: following.map((e) => ({ eventId: e.id, sequence: e.sequence ?? 0, type: e.type, aggregateId: e.aggregateId })),
      ...(result.receipts === undefined ? {} : { receipts: result.receipts.map(toReceipt) }),
    };
  };
}

/** A receipt the run's store statement recorded, as the event's workflow reports it (nothing sent by that workflow). */
function toReceipt(r: PublishResult): PublishReceipt {
  return { eventId: r.eventId, topic: r.topic, partition: r.partition, offset: r.offset, publishedAt: r.publishedAt.toISOString(), attempts: r.attempts, alreadyPublished: true };
}
