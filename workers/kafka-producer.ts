import { Partitioners, type Kafka, type Producer } from 'kafkajs';

/**
 * The producer the outbox publishes with: acks from all in-sync replicas (set on each send), one
 * request in flight (a retried request never overtakes a later one, so per-partition order holds),
 * never creating topics, and few retries of its own: Temporal's retry policy is the one in charge.
 *
 * Not idempotent, on purpose. kafkajs 2.2.4's idempotent producer gives a partition's sequence number
 * back after any failed request, including a client-side timeout after which the broker still wrote
 * the batch; the next batch (another event's, from a concurrent send or the next one) then reuses
 * that sequence, and the broker, taking it for a retry of the batch it has, acknowledges it with that
 * batch's offset and never writes it: an event marked published that Kafka never received
 * (test/integration/kafka-producer.test.ts reproduces it). Without idempotence a retried batch that
 * had been written is written again: a duplicate with the same event id, which at-least-once
 * delivery and the inbox helper already allow for, and every acknowledgement names a real write.
 */
export function createOutboxProducer(kafka: Kafka, options: { retries?: number } = {}): Producer {
  return kafka.producer({
    idempotent: false,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: options.retries ?? 2, initialRetryTime: 100, maxRetryTime: 2_000 },
  });
}
