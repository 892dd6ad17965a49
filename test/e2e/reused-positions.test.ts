/**
 * Kafka reuses positions when a topic is deleted and created again (or a log is truncated after an
 * unclean leader election): a new event is acknowledged at an offset the store already gives an event
 * published to the old log. The acknowledgement is real; the outbox reads the record at that position,
 * records the new event there (the old one keeps `published`, its former position in `lastError`),
 * and never sends it again.
 */
import type { Admin } from 'kafkajs';
import { eventWorkflowId } from '../../workers/relay/start-event-workflow';
import type { PublishEventOutcome } from '../../workflows/types';
import { KafkaCollector } from '../support/kafka-collector';
import { TestPipeline } from '../support/pipeline';
import { STORE_KINDS } from '../support/pipeline-store';
import { waitFor } from '../support/servers';
import { createTopicsWithLeaders } from '../../workers/kafka/topics';

/** Deletes the topic and creates it again, empty, with as many partitions. */
export async function recreateTopic(admin: Admin, topic: string, numPartitions: number): Promise<void> {
  await admin.deleteTopics({ topics: [topic], timeout: 30_000 });
  await waitFor(async () => !(await admin.listTopics()).includes(topic), { what: `${topic} deleted` });
  // The broker may still be removing it: createTopicsWithLeaders asks again until the creation takes.
  await createTopicsWithLeaders(admin, [{ topic, numPartitions }]);
}

describe.each(STORE_KINDS)('a Kafka position reused after the topic was created again (%s store)', (kind) => {
  let p: TestPipeline;
  let admin: Admin;

  beforeEach(async () => {
    p = await new TestPipeline(kind).setup();
    admin = p.kafka.admin();
    await admin.connect();
    p.onTeardown(() => admin.disconnect());
  });

  afterEach(async () => {
    await p.teardown();
  });

  /** An order event of aggregate `orderId` (its key), without the order row, so one key can have several. */
  const addOrderEvent = (orderId: string) =>
    p.inTransaction(async (tx) => (await p.outbox.add({ type: 'orders.OrderPlaced', aggregateId: orderId, payload: { orderId, customerId: 'c-1', totalCents: 1 } }, tx)).id);

  test.each([
    ['a workflow', false],
    ['the fast path', true],
  ] as const)('published by %s: the new event is recorded at its real position, sent once, and the old one keeps published', async (_path, fast) => {
    // Arrange: the first event of key K at offset 0 of its partition; then the topic is created again.
    await p.startWorker();
    await p.startRelay(p.relay(fast ? { fastPath: await p.fastPath() } : { publishPolicy: { initialIntervalMs: 200, maximumIntervalMs: 1_000, maximumAttempts: 4, deadLetterTopic: p.deadLetterTopic } }));
    const before = await addOrderEvent('order-k');
    const old = await p.markedPublished(before);
    await p.collector.stop();
    await recreateTopic(admin, p.topic, 3);
    const after = new KafkaCollector(p.kafka, p.topic);
    await after.start();
    p.onTeardown(() => after.stop());

    // Act: the next event of key K lands at the same partition and offset.
    const next = await addOrderEvent('order-k');
    await after.waitForEventIds([next], 60_000);
    const recorded = await p.markedPublished(next);
    const outcome = fast ? undefined : ((await p.client.workflow.getHandle(eventWorkflowId(next)).result()) as PublishEventOutcome);

    // Assert
    const [copy, ...more] = after.withEventId(next);
    expect(more).toHaveLength(0);
    expect(recorded.kafka).toEqual({ partition: copy?.partition, offset: copy?.offset });
    expect(recorded.kafka).toEqual(old.kafka);
    if (outcome !== undefined) expect(outcome).toMatchObject({ status: 'published', receipt: { partition: copy?.partition, offset: copy?.offset } });
    expect(await p.store.get(before)).toMatchObject({ status: 'published', kafka: null, lastError: expect.stringContaining(`for event ${next}`) });
  }, 180_000);
});
