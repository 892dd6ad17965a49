/** Reading back what a Kafka partition holds, for the producer tests. */
import type { Kafka } from 'kafkajs';
import { uniqueName, waitFor } from './servers';

/** Reads a topic's one partition from the start up to its end offset: offset → message value. */
export async function readPartition(kafka: Kafka, topic: string): Promise<Map<string, string>> {
  const admin = kafka.admin();
  await admin.connect();
  const [end] = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const high = BigInt(end?.high ?? '0');
  const found = new Map<string, string>();
  const consumer = kafka.consumer({ groupId: uniqueName('producer-reader'), maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void found.set(message.offset, String(message.value)) });
  try {
    await waitFor(() => BigInt(found.size) >= high, { timeoutMs: 60_000, what: `${high} records read back` });
  } finally {
    await consumer.disconnect();
  }
  return found;
}

/** What a partition holds against what the producer was told: acknowledged values missing, or not at their offset. */
export function unfaithful(acknowledged: ReadonlyArray<{ value: string; offset: string }>, topicHolds: ReadonlyMap<string, string>): { missing: string[]; misplaced: string[] } {
  const present = new Set(topicHolds.values());
  return {
    missing: acknowledged.filter((a) => !present.has(a.value)).map((a) => a.value),
    misplaced: acknowledged.filter((a) => topicHolds.get(a.offset) !== a.value).map((a) => `${a.value}@${a.offset} holds ${topicHolds.get(a.offset) ?? 'nothing'}`),
  };
}
