import { ApplicationFailure, Context } from '@temporalio/activity';
import type { OutboxMetrics } from '../workers/process/metrics';
import type { Producer } from 'kafkajs';
import { isOutboxError, OutboxErrorCode, OutboxStatus, silentLogger, toKafkaMessage, type Logger, type OutboxEvent, type OutboxEventStore } from '../domain/outbox';
import type { KafkaPositionReader } from '../workers/kafka/position-reader';
import type { PublishReceipt } from '../workflows/types';
import { storedReceipt } from './publish-event';
import { recordVerified } from './record-publication';

/** The compensation a service registers for an event type: undo the business change. */
export type Compensation = (event: OutboxEvent) => Promise<void>;

export interface EscalationDeps {
  store: Pick<OutboxEventStore, 'get' | 'transition' | 'nextOpenSequence' | 'markPublished'>;
  producer: Pick<Producer, 'send'>;
  /** Compensations by event type. */
  compensations?: Record<string, Compensation>;
  /** Reads a Kafka position, to tell a reused one from a false acknowledgement (see PublishActivityDeps.positions). */
  positions?: KafkaPositionReader;
  logger?: Logger;
  clock?: () => Date;
  metrics?: OutboxMetrics;
}

/** What the escalation activities share: their dependencies, defaults, and loading an event that must exist. */
interface Escalation {
  deps: EscalationDeps;
  logger: Logger;
  clock: () => Date;
  load: (eventId: string) => Promise<OutboxEvent>;
}

/** The activities of escalation and operator actions (store bookkeeping, compensation, dead letters). */
export function createEscalationActivities(deps: EscalationDeps) {
  const c: Escalation = {
    deps,
    logger: deps.logger ?? silentLogger,
    clock: deps.clock ?? (() => new Date()),
    load: async (eventId) => {
      const event = await deps.store.get(eventId);
      if (event === null) throw ApplicationFailure.nonRetryable(`event ${eventId} is not in the outbox store`, OutboxErrorCode.eventNotFound);
      return event;
    },
  };
  return { ...escalationSteps(c), ...operatorActions(c), ...sequencingAndDeadLetters(c) };
}

/** The workflow's own steps when its attempts are spent: is it published after all, and if not, stuck. */
function escalationSteps(c: Escalation) {
  return {
    /**
     * The store's record of the event's publication, or null when it is not published. Given `sent`
     * (a publication Kafka acknowledged that the publish activity could not record), records it
     * first. Asked before escalating and before an operator's compensate or discard, so a delivered
     * event is never escalated, undone or discarded.
     */
    async publishedReceipt(eventId: string, sent: PublishReceipt | null): Promise<PublishReceipt | null> {
      if (sent !== null) {
        try {
          await recordVerified(c.deps.store, c.deps.positions, { ...sent, publishedAt: new Date(sent.publishedAt) }, c.logger);
        } catch (err) {
          // Another event's record at that position: the acknowledgement was not this event's publication.
          if (!isOutboxError(err, OutboxErrorCode.kafkaPositionTaken)) throw err;
        }
      }
      return storedReceipt(await c.load(eventId), c.clock, sent === null);
    },

    /**
     * pending → stuck, with the last error. Returns the attempts the store counted and the event's
     * status after it: `stuck`, or what the store says instead (published meanwhile, by a late
     * acknowledgement or another way), which the workflow acts on.
     */
    async escalateEvent(eventId: string, lastError: string): Promise<{ attempts: number; status: OutboxStatus }> {
      const event = await c.load(eventId);
      const attempts = Math.max(event.attempts, 1);
      if (await c.deps.store.transition(eventId, { from: OutboxStatus.pending, to: OutboxStatus.stuck, attempts, lastError })) {
        c.deps.metrics?.eventsStuck.inc({ type: event.type });
        c.logger.warn('event escalated: stuck until an operator acts', { eventId, type: event.type, attempt: attempts, lastError });
        return { attempts, status: OutboxStatus.stuck };
      }
      const now = await c.load(eventId);
      if (now.status !== OutboxStatus.stuck) c.logger.info(`event not escalated: the store says it is ${now.status}`, { eventId, type: event.type });
      return { attempts: Math.max(now.attempts, 1), status: now.status };
    },
  };
}

/** What an operator's retry, compensate and discard do in the store and the service. */
function operatorActions(c: Escalation) {
  return {
    /** stuck → pending, for an operator's retry; false when the store no longer says stuck. */
    async reopenEvent(eventId: string): Promise<boolean> {
      const reopened = await c.deps.store.transition(eventId, { from: OutboxStatus.stuck, to: OutboxStatus.pending });
      c.logger.info(reopened ? 'operator retry: event pending again' : 'operator retry: the event is no longer stuck', { eventId });
      return reopened;
    },

    /** stuck → compensated | discarded, with the operator's reason; false when the store no longer says stuck. */
    async resolveEvent(eventId: string, status: 'compensated' | 'discarded', reason: string | null): Promise<boolean> {
      const event = await c.load(eventId);
      const resolved = await c.deps.store.transition(eventId, { from: OutboxStatus.stuck, to: status, resolution: { status, reason, at: c.clock() } });
      if (resolved) {
        (status === 'compensated' ? c.deps.metrics?.eventsCompensated : c.deps.metrics?.eventsDiscarded)?.inc({ type: event.type });
        c.logger.info(`event ${status}`, { eventId, reason });
      } else {
        c.logger.error(`event not ${status}: the store no longer says stuck`, { eventId, reason });
      }
      return resolved;
    },

    /** Runs the compensation registered for the event's type. */
    async compensateEvent(eventId: string): Promise<void> {
      const event = await c.load(eventId);
      const compensation = c.deps.compensations?.[event.type];
      if (compensation === undefined) {
        throw ApplicationFailure.nonRetryable(`no compensation is registered for event type ${event.type}`, 'NO_COMPENSATION');
      }
      try {
        await compensation(event);
      } catch (err) {
        c.logger.error('compensation failed', { eventId, type: event.type, attempt: Context.current().info.attempt, error: err });
        throw err;
      }
      c.logger.info('compensation ran', { eventId, type: event.type });
    },
  };
}

/** A key sequencer's reads of the store, and the dead-letter copy of a stuck event. */
function sequencingAndDeadLetters(c: Escalation) {
  return {
    /** The lowest open (pending or stuck) sequence of a key, for its sequencer. */
    async nextOpenSequence(topic: string, key: string): Promise<number | null> {
      return c.deps.store.nextOpenSequence(topic, key);
    },

    /** Completes once the event is published, compensated or discarded; retried (with backoff) until then. */
    async waitUntilSettled(eventId: string): Promise<void> {
      const event = await c.load(eventId);
      if (event.status === OutboxStatus.pending || event.status === OutboxStatus.stuck) {
        throw ApplicationFailure.retryable(`event ${eventId} is still ${event.status}`, 'NOT_SETTLED');
      }
    },

    /** A copy of the stuck event to the dead-letter topic: the same envelope plus error headers. */
    async publishDeadLetter(eventId: string, topic: string, error: string): Promise<void> {
      const event = await c.load(eventId);
      const message = toKafkaMessage(event);
      await c.deps.producer.send({
        topic,
        acks: -1,
        messages: [{ ...message, headers: { ...message.headers, txoutbox_error: error, txoutbox_original_topic: event.topic } }],
      });
      c.logger.warn('stuck event copied to the dead-letter topic', { eventId, type: event.type, topic });
    },
  };
}
