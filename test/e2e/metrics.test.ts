/**
 * The Prometheus metrics follow what happens: a publish, a stuck event and its operator retry, and
 * the lag (age of the oldest unpublished event) growing while no worker runs and falling after.
 */
import { eventWorkflowId } from '../../workers/relay/start-event-workflow';
import { histogramCount, metricValue, OutboxMetrics } from '../../workers/process/metrics';
import { retryUpdate, stateQuery } from '../../workflows/signals';
import { TestPipeline } from '../support/pipeline';
import { STORE_KINDS } from '../support/pipeline-store';
import { waitFor } from '../support/servers';
import { createTopicsWithLeaders } from '../../workers/kafka/topics';

describe.each(STORE_KINDS)('metrics (%s store)', (kind) => {
  let p: TestPipeline;
  let metrics: OutboxMetrics;

  beforeEach(async () => {
    p = await new TestPipeline(kind).setup();
    metrics = new OutboxMetrics();
    metrics.observeStore(p.store);
  });

  afterEach(async () => {
    await p.teardown();
  });

  const value = (name: string, labels: Record<string, string> = {}) => metricValue(metrics.registry, name, labels);

  test('a publish, a stuck event and its retry move the counters and histograms', async () => {
    // Arrange
    await p.startWorker({ metrics });
    await p.startRelay(p.relay({ metrics, publishPolicy: { initialIntervalMs: 100, maximumIntervalMs: 200, maximumAttempts: 3 } }));

    // Act: one event published, one stuck (unknown topic), then the topic is created and it is retried.
    const published = await p.placeOrder('order-1');
    await waitFor(async () => (await value('txoutbox_events_published_total', { topic: p.topic })) === 1, { what: 'one publish counted' });
    // An ordered event goes to its key's sequencer: counted as sequenced, not as a workflow start.
    const ordered = await p.inTransaction((tx) => p.outbox.add({ type: 'orders.LineAdded', aggregateId: 'order-9', payload: { orderId: 'order-9', line: 1, note: '' } }, tx));
    await p.collector.waitForEventIds([ordered.id]);
    const stuck = await p.shipOrder('order-2');
    const handle = p.client.workflow.getHandle(eventWorkflowId(stuck));
    await waitFor(async () => (await handle.query(stateQuery)).status === 'stuck', { what: 'the event to be stuck' });
    const stuckCount = await value('txoutbox_events_stuck_total', { type: 'orders.OrderShipped' });
    const failures = await value('txoutbox_publish_failures_total', { topic: p.missingTopic, reason: 'UNKNOWN_TOPIC' });
    const stuckGauge = await value('txoutbox_events', { status: 'stuck' });
    const admin = p.kafka.admin();
    await admin.connect();
    await createTopicsWithLeaders(admin, [{ topic: p.missingTopic }]);
    await admin.disconnect();
    await handle.executeUpdate(retryUpdate);
    await handle.result();

    // Assert
    expect(published).toBeDefined();
    expect(await value('txoutbox_events_relayed_total')).toBe(3);
    expect(await value('txoutbox_workflows_started_total', { source: 'feed' })).toBe(2);
    expect(await value('txoutbox_events_sequenced_total', { source: 'feed' })).toBe(1);
    expect(await value('txoutbox_publish_attempts_total', { topic: p.topic, outcome: 'success' })).toBe(2);
    expect([stuckCount, failures, stuckGauge]).toEqual([1, 1, 1]);
    expect(await value('txoutbox_publish_attempts_total', { topic: p.missingTopic, outcome: 'success' })).toBe(1);
    expect(await value('txoutbox_events_published_total')).toBe(3);
    expect(await value('txoutbox_events', { status: 'stuck' })).toBe(0);
    expect(await histogramCount(metrics.registry, 'txoutbox_commit_to_kafka_seconds')).toBe(3);
    expect(await histogramCount(metrics.registry, 'txoutbox_publish_duration_seconds')).toBe(4);
    expect(await value('txoutbox_feed_checkpoint_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(await metrics.registry.metrics()).toContain('txoutbox_oldest_unpublished_event_age_seconds');
  });

  test('lag: the age of the oldest unpublished event grows while the worker is stopped, and falls to 0 after', async () => {
    // Arrange
    await p.startRelay(p.relay({ metrics }));
    const eventId = await p.placeOrder('order-1');

    // Act
    const lag1 = await value('txoutbox_oldest_unpublished_event_age_seconds');
    await waitFor(async () => (await value('txoutbox_oldest_unpublished_event_age_seconds')) >= lag1 + 0.5, { what: 'the lag to grow' });
    const lag2 = await value('txoutbox_oldest_unpublished_event_age_seconds');
    await p.startWorker({ metrics });
    await p.collector.waitForEventIds([eventId]);
    await waitFor(async () => (await value('txoutbox_oldest_unpublished_event_age_seconds')) === 0, { what: 'the lag to fall to 0' });

    // Assert
    expect(lag1).toBeGreaterThanOrEqual(0);
    expect(lag2).toBeGreaterThan(lag1);
    expect(await value('txoutbox_events', { status: 'pending' })).toBe(0);
  });
});
