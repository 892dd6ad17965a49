import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { stopIdleRequestQueueTimers } from './request-queue-idle';

stopIdleRequestQueueTimers();

/** What one Kafka position holds, as far as the outbox is concerned. */
export type PositionContent =
  /** A record: the event id its `ce_id` header carries (null: none, not an outbox message). */
  | { kind: 'record'; eventId: string | null }
  /** No record at that offset (below the log's start, beyond its end, or compacted away), or none read in time. */
  | { kind: 'none' };

/**
 * Reads the record at one Kafka position: when the store says another event was already recorded at
 * the topic, partition and offset an acknowledgement named, Kafka itself tells which event is there
 * (a topic deleted and created again, or a log truncated, reuses offsets; a producer bug can
 * acknowledge a write that never happened).
 */
export interface KafkaPositionReader {
  contentAt(topic: string, partition: number, offset: string): Promise<PositionContent>;
}

export interface KafkaPositionReaderOptions {
  /** Longest wait for the record, in ms. @default 15000 */
  timeoutMs?: number;
}

/**
 * A reader over a kafkajs client: one short-lived consumer per question, in a group of its own that
 * commits nothing, positioned at the offset with `seek` (kafkajs reads through consumer groups only).
 * It costs a group join and a fetch, a few hundred milliseconds on a broker whose
 * `group.initial.rebalance.delay.ms` is 0 (3 s more on a broker left at Kafka's default), and is asked
 * only when positions collide, which is rare.
 */
export function createKafkaPositionReader(kafka: Kafka, options: KafkaPositionReaderOptions = {}): KafkaPositionReader {
  const timeoutMs = options.timeoutMs ?? 15_000;
  return {
    async contentAt(topic, partition, offset) {
      const target = BigInt(offset);
      const admin = kafka.admin();
      await admin.connect();
      try {
        const bounds = (await admin.fetchTopicOffsets(topic)).find((p) => p.partition === partition);
        if (bounds === undefined || target < BigInt(bounds.low) || target >= BigInt(bounds.high)) return { kind: 'none' };
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
      const consumer = kafka.consumer({ groupId: `txoutbox-position-${randomUUID()}`, maxWaitTimeInMs: 100, allowAutoTopicCreation: false, retry: { retries: 2 } });
      let timer: NodeJS.Timeout | undefined;
      try {
        await consumer.connect();
        await consumer.subscribe({ topics: [topic], fromBeginning: false });
        const content = new Promise<PositionContent>((resolve) => {
          timer = setTimeout(() => resolve({ kind: 'none' }), timeoutMs);
          void consumer.run({
            autoCommit: false,
            eachMessage: async ({ partition: p, message }) => {
              if (p !== partition || BigInt(message.offset) < target) return;
              // The first record at or after the offset: it is the one, or the offset holds none.
              resolve(BigInt(message.offset) === target ? { kind: 'record', eventId: message.headers?.ce_id?.toString() ?? null } : { kind: 'none' });
            },
          });
          consumer.on(consumer.events.GROUP_JOIN, () => consumer.seek({ topic, partition, offset }));
        });
        return await content;
      } finally {
        clearTimeout(timer);
        await consumer.disconnect().catch(() => undefined);
      }
    },
  };
}
