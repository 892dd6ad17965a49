/**
 * A consumer using the inbox helper applies each event exactly once: redelivered messages (same
 * event id) and two consumer instances receiving the same event at the same moment change its
 * effects once.
 */
import { PostgresInbox } from '../../domain/stores/postgres-inbox';
import { createInboxConsumer, type InboxConsumer } from '../../workers/inbox-consumer';
import type { PgTx } from '../../domain/stores/postgres-store';
import { TestPipeline } from '../support/pipeline';
import { uniqueName, waitFor } from '../support/servers';

describe('inbox consumer', () => {
  let p: TestPipeline;

  beforeEach(async () => {
    p = await new TestPipeline().setup();
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

    const inbox = new PostgresInbox(p.pool, p.schema);
    await inbox.setup();
    await p.pool.query(`create table "${p.schema}".billing_effects (event_id text not null, order_id text not null)`);
    const outcomes: string[] = [];
    const instance = (): InboxConsumer<PgTx> => {
      const consumer = createInboxConsumer<PgTx>({
        kafka: p.kafka,
        groupId: uniqueName('billing-instance'), // each instance receives every message, as after a rebalance
        consumerName: 'billing',
        topics: [p.topic],
        fromBeginning: true,
        inbox,
        handle: async (event, tx) => {
          const { orderId } = event.payload as { orderId: string };
          await tx.client.query(`insert into "${p.schema}".billing_effects (event_id, order_id) values ($1, $2)`, [event.id, orderId]);
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
    const { rows } = await p.pool.query<{ event_id: string; n: string }>(
      `select event_id, count(*)::text as n from "${p.schema}".billing_effects group by event_id order by event_id`,
    );
    expect(rows).toEqual([...ids].sort().map((id) => ({ event_id: id, n: '1' })));
    expect(outcomes.filter((o) => o === 'applied')).toHaveLength(ids.length);
    expect(outcomes.filter((o) => o === 'duplicate')).toHaveLength(3 * ids.length);
  });
});
