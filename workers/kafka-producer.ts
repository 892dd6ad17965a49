import { Partitioners, type Kafka, type Producer } from 'kafkajs';

/**
 * The producer the outbox publishes with: idempotent (the broker drops a retried batch it already
 * wrote), one request in flight (kafkajs' condition for idempotence, and per-partition order),
 * never creating topics, and few retries of its own: Temporal's retry policy is the one in charge.
 */
export function createOutboxProducer(kafka: Kafka, options: { retries?: number } = {}): Producer {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: options.retries ?? 2, initialRetryTime: 100, maxRetryTime: 2_000 },
  });
}
