import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Producer } from 'kafkajs';
import { OutboxErrorCode, OutboxStatus, silentLogger, toKafkaMessage, type Logger, type OutboxStore } from '../domain/outbox';
import type { PublishReceipt } from '../workflows/types';

export interface PublishActivityDeps {
  /** Any adapter: the activity never sees a driver. */
  store: Pick<OutboxStore<unknown>, 'get' | 'markPublished'>;
  /** A connected kafkajs producer (idempotent). */
  producer: Pick<Producer, 'send'>;
  logger?: Logger;
  /** How long Kafka may take to acknowledge, in ms. @default 10000 */
  ackTimeoutMs?: number;
  clock?: () => Date;
}

/**
 * Loads the event, skips it if the store already says `published` (Temporal's id deduplication
 * ends with its retention; the store's status does not), publishes it with acks from all in-sync
 * replicas, and records partition, offset and time on the event.
 */
export function createPublishEvent(deps: PublishActivityDeps): (eventId: string) => Promise<PublishReceipt> {
  const logger = deps.logger ?? silentLogger;
  const clock = deps.clock ?? (() => new Date());
  const ackTimeoutMs = deps.ackTimeoutMs ?? 10_000;

  return async function publishEvent(eventId: string): Promise<PublishReceipt> {
    const attempt = Context.current().info.attempt;
    const event = await deps.store.get(eventId);
    if (event === null) {
      throw ApplicationFailure.nonRetryable(`event ${eventId} is not in the outbox store`, OutboxErrorCode.eventNotFound);
    }
    const fields = { eventId, type: event.type, topic: event.topic, attempt };
    if (event.status === OutboxStatus.published && event.kafka !== null) {
      logger.info('event already published: not sending it again', fields);
      return {
        eventId,
        topic: event.topic,
        partition: event.kafka.partition,
        offset: event.kafka.offset,
        publishedAt: (event.publishedAt ?? clock()).toISOString(),
        attempts: event.attempts,
        alreadyPublished: true,
      };
    }

    const message = toKafkaMessage(event);
    let metadata;
    try {
      [metadata] = await deps.producer.send({ topic: event.topic, acks: -1, timeout: ackTimeoutMs, messages: [message] });
    } catch (err) {
      logger.warn('publish attempt failed', { ...fields, error: err });
      throw publishFailure(err, eventId);
    }
    if (metadata === undefined || metadata.errorCode !== 0) {
      throw ApplicationFailure.retryable(`Kafka answered error code ${metadata?.errorCode ?? 'none'} for ${eventId}`, OutboxErrorCode.publishFailed);
    }
    const receipt: PublishReceipt = {
      eventId,
      topic: event.topic,
      partition: metadata.partition,
      offset: metadata.baseOffset ?? metadata.offset ?? '-1',
      publishedAt: clock().toISOString(),
      attempts: attempt,
      alreadyPublished: false,
    };
    const marked = await deps.store.markPublished({ ...receipt, publishedAt: new Date(receipt.publishedAt) });
    logger.info('event published', { ...fields, partition: receipt.partition, offset: receipt.offset, marked });
    return receipt;
  };
}

/** kafkajs says whether an error can pass (`retriable`); what cannot must not be retried. */
function publishFailure(err: unknown, eventId: string): ApplicationFailure {
  const message = err instanceof Error ? err.message : String(err);
  let cause: unknown = err;
  while (cause instanceof Error) {
    if ((cause as { retriable?: unknown }).retriable === false && cause.name !== 'KafkaJSNumberOfRetriesExceeded') {
      return ApplicationFailure.nonRetryable(`publishing ${eventId} cannot succeed: ${message}`, OutboxErrorCode.publishFailed);
    }
    cause = cause.cause;
  }
  return ApplicationFailure.retryable(`publishing ${eventId} failed: ${message}`, OutboxErrorCode.publishFailed);
}
