/**
 * A consumer using the inbox helper applies each event exactly once: redelivered messages (same
 * event id) and two consumer instances receiving the same event at the same moment change its
 * effects once.
 */
import { createInboxConsumer, type InboxConsumer } from '../../workers/inbox/consumer';
import { TestPipeline } from '../support/pipeline';
import { STORE_KINDS } from '../support/pipeline-store';
import { uniqueName, waitFor } from '../support/servers';

describe.each(STORE_KINDS)('inbox consumer (%s store)', (kind) => {
  let p: TestPipeline;

  beforeEach(async () => {
    p = await new TestPipeline(kind).setup();
  });

  afterEach(async () => {
    await p.teardown();
  });

  test('exactly once: redelivered events and two instances at the same moment apply each event once', async () => {
    // Arrange: five events through the real pipeline, then every message delivered a second time.
    await p.startWorker();
    await p.startRelay();
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) ids.push(await p.placeOrder(`order-${i}`));
    await p.collector.waitForEventIds(ids);
    const producer = p.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: p.topic,
      messages: p.collector.messages.map((m) => ({ key: m.key, value: m.value, headers: m.cloudEvent.headers })),
    });
    await producer.disconnect();

    const inbox = p.db.inbox;
    const outcomes: string[] = [];
    const instance = (): InboxConsumer<unknown> => {
      const consumer = createInboxConsumer<unknown>({
        kafka: p.kafka,
        groupId: uniqueName('billing-instance'), // each instance receives every message, as after a rebalance
        consumerName: 'billing',
        topics: [p.topic],
        fromBeginning: true,
        inbox,
        handle: async (event, tx) => {
          const { orderId } = event.payload as { orderId: string };
          await p.db.recordEffect(tx, event.id, orderId);
          await new Promise((resolve) => setTimeout(resolve, 20)); // widen the window in which both instances hold the event
        },
      });
      consumer.on('handled', ({ outcome }) => outcomes.push(outcome));
      return consumer;
    };

    // Act
    const running = await Promise.all([instance().start(), instance().start()]);
    await waitFor(() => outcomes.length === 4 * ids.length, { what: 'both instances to handle both copies of every event' });
    await Promise.all(running.map((r) => r.shutdown()));

    // Assert
    expect(await p.db.effectCounts()).toEqual([...ids].sort().map((id) => ({ eventId: id, n: 1 })));
    expect(outcomes.filter((o) => o === 'applied')).toHaveLength(ids.length);
    expect(outcomes.filter((o) => o === 'duplicate')).toHaveLength(3 * ids.length);
  });
});
