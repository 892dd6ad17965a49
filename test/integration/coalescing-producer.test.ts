/**
 * The coalescing producer against the real broker: concurrent one-message sends leave in fewer
 * requests, and the partition and offset each caller is told are where an independent consumer
 * finds that caller's message.
 */
import { Kafka, logLevel } from 'kafkajs';
import { createOutboxProducer } from '../../workers/kafka/producer';
import { CoalescingProducer, cachedPartitions } from '../../workers/kafka/coalescing-producer';
import { testServers, uniqueName, waitFor } from '../support/servers';
import { createTopicsWithLeaders } from '../../workers/kafka/topics';

const servers = testServers();

describe('CoalescingProducer on the real broker', () => {
  const kafka = new Kafka({ clientId: 'test-coalesce', brokers: servers.kafkaBrokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const producer = createOutboxProducer(kafka);

  beforeAll(async () => {
    await Promise.all([admin.connect(), producer.connect()]);
  });

  afterAll(async () => {
    await Promise.all([admin.disconnect(), producer.disconnect()]);
  });

  it('coalesces concurrent sends and reports each message’s true partition and offset', async () => {
    const topic = uniqueName('coalesce');
    await createTopicsWithLeaders(admin, [{ topic, numPartitions: 3 }]);
    const coalescing = new CoalescingProducer(producer, {
      lingerMs: 20,
      maxBatch: 25,
      partitionsOf: cachedPartitions(async (t) => (await admin.fetchTopicMetadata({ topics: [t] })).topics[0]?.partitions ?? []),
    });
    const ids = Array.from({ length: 100 }, (_, i) => `m-${i}`);
    const told = await Promise.all(
      ids.map(async (id, i) => {
        const [meta] = await coalescing.send({ topic, acks: -1, messages: [{ key: `key-${i % 7}`, value: id }] });
        return { id, at: `${meta?.partition}:${meta?.baseOffset}` };
      }),
    );
    expect(coalescing.stats.messages).toBe(100);
    expect(coalescing.stats.requests).toBeLessThan(100);
    expect(coalescing.stats.requests).toBeGreaterThanOrEqual(4); // 100 messages, at most 25 per request

    const consumer = kafka.consumer({ groupId: uniqueName('coalesce-reader'), maxWaitTimeInMs: 100 });
    const found = new Map<string, string>();
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ partition, message }) => void found.set(String(message.value), `${partition}:${message.offset}`) });
    try {
      await waitFor(() => found.size === ids.length, { what: '100 messages read back' });
    } finally {
      await consumer.disconnect();
    }
    for (const { id, at } of told) expect(`${id}@${at}`).toBe(`${id}@${found.get(id)}`);
  });

  it('fails the send of a topic that does not exist, without blocking later sends', async () => {
    const coalescing = new CoalescingProducer(producer, {
      lingerMs: 5,
      partitionsOf: cachedPartitions(async (t) => (await admin.fetchTopicMetadata({ topics: [t] })).topics[0]?.partitions ?? []),
    });
    await expect(coalescing.send({ topic: uniqueName('missing'), acks: -1, messages: [{ key: 'k', value: 'v' }] })).rejects.toThrow();
    const topic = uniqueName('coalesce-after');
    await createTopicsWithLeaders(admin, [{ topic, numPartitions: 1 }]);
    await expect(coalescing.send({ topic, acks: -1, messages: [{ key: 'k', value: 'v' }] })).resolves.toMatchObject([{ partition: 0, baseOffset: '0' }]);
  });
});
