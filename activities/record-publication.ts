import { isOutboxError, OutboxErrorCode, type Logger, type MarkResult, type OutboxEventStore, type PublishResult } from '../domain/outbox';
import type { KafkaPositionReader } from '../workers/kafka/position-reader';

/**
 * Records a publication Kafka acknowledged. When the store has another event at that position
 * (KAFKA_POSITION_TAKEN), Kafka is asked what the position holds: this event's own record means the
 * acknowledgement is real and Kafka reused the position (a topic deleted and created again, a log
 * truncated): it is recorded over the stale one, and never sent again. Any other record means the
 * acknowledgement wrote nothing of this event there: the error is thrown as it is (retriable: a new
 * send writes it at a position of its own). Without a reader, the error is thrown as before.
 */
export async function recordVerified(
  store: Pick<OutboxEventStore, 'markPublished'>,
  positions: KafkaPositionReader | undefined,
  result: PublishResult,
  logger: Logger,
): Promise<MarkResult> {
  try {
    return await store.markPublished(result);
  } catch (err) {
    if (!isOutboxError(err, OutboxErrorCode.kafkaPositionTaken) || positions === undefined) throw err;
    const found = await positions.contentAt(result.topic, result.partition, result.offset);
    const fields = { eventId: result.eventId, topic: result.topic, partition: result.partition, offset: result.offset };
    if (found.kind !== 'record' || found.eventId !== result.eventId) {
      logger.warn('acknowledged at a Kafka position holding another record (or none): not recorded, the event is sent again', { ...fields, found: found.kind === 'record' ? found.eventId : 'no record' });
      throw err;
    }
    logger.warn('Kafka reused a recorded position for this event (topic recreated or log truncated): recorded over the stale record', fields);
    return store.markPublished(result, { supersede: true });
  }
}
