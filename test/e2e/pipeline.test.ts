/**
 * The guarantees of DESIGN.md that the pipeline itself carries, on the real servers
 * (PostgreSQL adapter, Temporal dev server, Kafka broker).
 */
import { canonicalJson } from '../../domain/outbox';
import { eventWorkflowId } from '../../workers/start-event-workflow';
import { TestPipeline } from '../support/pipeline';
import { waitFor } from '../support/servers';

describe('outbox pipeline on PostgreSQL, Temporal and Kafka', () => {
  let p: TestPipeline;

  beforeEach(async () => {
    p = await new TestPipeline().setup();
  });

  afterEach(async () => {
    await p.teardown();
  });

  test('an event for every committed transaction: exactly one message with the right key, headers and payload', async () => {
    // Arrange
    await p.startWorker();
    await p.startRelay();

    // Act
    const eventId = await p.placeOrder('order-1', { totalCents: 4200 });
    await p.collector.waitForEventIds([eventId]);
    await waitFor(async () => (await p.eventRows())[0]?.status === 'published', { what: 'the event to be marked published' });

    // Assert
    const messages = p.collector.withEventId(eventId);
    expect(messages).toHaveLength(1);
    const [message] = messages;
    expect(message?.key).toBe('order-1');
    expect(message?.value).toBe(canonicalJson({ orderId: 'order-1', customerId: 'c-1', totalCents: 4200 }));
    expect(message?.cloudEvent).toMatchObject({ id: eventId, type: 'orders.OrderPlaced', source: 'txoutbox-tests', subject: 'order-1', schemaVersion: 1 });
    expect(message?.cloudEvent.headers).toMatchObject({
      ce_specversion: '1.0',
      'content-type': 'application/json',
      ce_aggregatetype: 'order',
      ce_correlationid: 'corr-order-1',
    });
    const [row] = await p.eventRows();
    expect(row).toEqual({ id: eventId, status: 'published', kafka_offset: message?.offset });
    expect(await p.workflowIds()).toEqual([eventWorkflowId(eventId)]);
  });

  test('no event for a rolled-back transaction: no row, no workflow, no message', async () => {
    // Arrange
    await p.startWorker();
    await p.startRelay();

    // Act
    await expect(p.placeOrder('order-rolled-back', { fail: true })).rejects.toThrow('rolled back on purpose');
    const committed = await p.placeOrder('order-committed');
    await p.collector.waitForEventIds([committed]);

    // Assert
    expect((await p.eventRows()).map((r) => r.id)).toEqual([committed]);
    expect(await p.workflowIds()).toEqual([eventWorkflowId(committed)]);
    expect(p.collector.messages.map((m) => m.key)).toEqual(['order-committed']);
    const { rows } = await p.pool.query(`select id from "${p.schema}".orders order by id`);
    expect(rows).toEqual([{ id: 'order-committed' }]);
  });
});
