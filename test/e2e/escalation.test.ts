/**
 * Escalation and operator control on the real servers: an event that cannot be published is never
 * dropped silently; it becomes stuck (store, search attribute, dead-letter copy) and waits for an
 * operator's retry, compensation or discard, without holding up other events.
 */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { Kafka, logLevel } from 'kafkajs';
import type { OutboxEvent } from '../../domain/outbox';
import { eventWorkflowId } from '../../workers/relay/start-event-workflow';
import { compensateUpdate, discardSignal, discardUpdate, retryUpdate, stateQuery, type DiscardRequest } from '../../workflows/signals';
import type { PublishEventOutcome } from '../../workflows/types';
import { failingMarkPublished } from '../support/faulty-store';
import { KafkaCollector } from '../support/kafka-collector';
import { TestPipeline } from '../support/pipeline';
import { STORE_KINDS } from '../support/pipeline-store';
import { waitFor } from '../support/servers';
import { DelayingTcpProxy, kafkaProxyAddresses } from '../support/tcp-proxy';

describe.each(STORE_KINDS)('escalation of events that cannot be published (%s store)', (kind) => {
  let p: TestPipeline;

  beforeEach(async () => {
    p = await new TestPipeline(kind).setup();
  });

  afterEach(async () => {
    await p.teardown();
  });

  async function stuckEvent(options: { compensations?: Record<string, (e: OutboxEvent) => Promise<void>>; deadLetterTopic?: string } = {}) {
    const worker = await p.startWorker(options);
    await p.startRelay(
      p.relay({ publishPolicy: { initialIntervalMs: 100, maximumIntervalMs: 200, maximumAttempts: 3, deadLetterTopic: options.deadLetterTopic ?? p.deadLetterTopic } }),
    );
    const eventId = await p.shipOrder('order-1');
    const handle = p.client.workflow.getHandle(eventWorkflowId(eventId));
    await waitFor(async () => (await handle.query(stateQuery)).status === 'stuck', { what: 'the event to be stuck' });
    return { eventId, handle, worker };
  }

  test('a failure that can never pass escalates: stuck in the store and the search attribute, with its error, and a dead-letter copy', async () => {
    // Arrange
    const deadLetters = new KafkaCollector(p.kafka, p.deadLetterTopic);
    await deadLetters.start();

    // Act
    const { eventId, handle } = await stuckEvent();
    await deadLetters.waitForEventIds([eventId]);

    // Assert
    const state = await handle.query(stateQuery);
    expect(state).toMatchObject({ eventId, status: 'stuck', attempts: 1 });
    expect(state.lastError).toContain(`topic ${p.missingTopic} does not exist`);
    expect(await p.store.get(eventId)).toMatchObject({ status: 'stuck', attempts: 1, lastError: expect.stringContaining('does not exist') });
    await waitFor(async () => (await handle.describe()).searchAttributes.OutboxStatus?.[0] === 'stuck', { what: 'OutboxStatus = stuck' });
    const [copy] = deadLetters.withEventId(eventId);
    expect(copy?.cloudEvent.headers).toMatchObject({ txoutbox_original_topic: p.missingTopic, txoutbox_error: expect.stringContaining('does not exist') });
    await deadLetters.stop();
  });

  test('an attempt that outlives its timeout is waited out: its late acknowledgement is recorded and the event completes as published, never escalated, no dead-letter copy', async () => {
    // Arrange: the worker publishes through a proxy that holds every byte 5 s (a slow broker): a send
    // is written at once and acknowledged after the attempt's 2 s start-to-close, which is its only one.
    const { listen, target } = kafkaProxyAddresses();
    const proxy = new DelayingTcpProxy(listen, target);
    await proxy.start();
    p.onTeardown(() => proxy.stop());
    const requestTimeoutMs = 8_000;
    const slowKafka = new Kafka({ clientId: 'txoutbox-slow', brokers: [`${listen.host}:${listen.port}`], logLevel: logLevel.NOTHING, requestTimeout: requestTimeoutMs });
    await p.startWorker({ kafka: slowKafka, kafkaRequestTimeoutMs: requestTimeoutMs });
    await p.startRelay(p.relay({ publishPolicy: { startToCloseTimeoutMs: 2_000, initialIntervalMs: 100, maximumIntervalMs: 200, maximumAttempts: 1, deadLetterTopic: p.deadLetterTopic } }));
    const deadLetters = new KafkaCollector(p.kafka, p.deadLetterTopic);
    await deadLetters.start();
    const warm = await p.placeOrder('warm-up'); // the worker's connections and metadata, at full speed
    await p.collector.waitForEventIds([warm]);
    proxy.delayMs = 2_500;

    // Act
    const eventId = await p.placeOrder('slow-ack');
    const handle = p.client.workflow.getHandle(eventWorkflowId(eventId));
    await waitFor(() => handle.describe().then(() => true), { what: "the event's workflow started" });
    const outcome = (await handle.result()) as PublishEventOutcome;

    // Assert
    const stored = await p.store.get(eventId);
    expect(outcome).toMatchObject({ status: 'published', receipt: { eventId, partition: stored?.kafka?.partition, offset: stored?.kafka?.offset } });
    expect(stored).toMatchObject({ status: 'published' });
    await p.collector.waitForEventIds([eventId]);
    expect(p.collector.withEventId(eventId)).toHaveLength(1);
    expect(deadLetters.messages).toEqual([]);
    await deadLetters.stop();
  });

  test('a stuck event does not hold up other events', async () => {
    // Arrange
    await stuckEvent();

    // Act
    const other = await p.placeOrder('order-2');

    // Assert
    await p.collector.waitForEventIds([other]);
    expect(p.collector.withEventId(other)).toHaveLength(1);
  });

  test('operator retry after the cause is fixed publishes the event with a fresh attempt budget', async () => {
    // Arrange
    const { eventId, handle } = await stuckEvent();
    await p.createMissingTopic();
    const shipments = new KafkaCollector(p.kafka, p.missingTopic);
    await shipments.start();

    // Act
    const afterRetry = await handle.executeUpdate(retryUpdate);
    const outcome = await handle.result();

    // Assert
    expect(afterRetry).toMatchObject({ retryRounds: 1 });
    expect(outcome).toMatchObject({ status: 'published', receipt: { eventId } });
    await shipments.waitForEventIds([eventId]);
    expect(await p.store.get(eventId)).toMatchObject({ status: 'published' });
    await shipments.stop();
  });

  test('compensate runs the compensation registered for the type, then marks the event compensated', async () => {
    // Arrange
    const compensated: string[] = [];
    const { eventId, handle } = await stuckEvent({
      compensations: { 'orders.OrderShipped': async (event) => void compensated.push(event.aggregateId) },
    });

    // Act
    const state = await handle.executeUpdate(compensateUpdate, { args: [{ reason: 'shipment cancelled' }] });
    const outcome = await handle.result();

    // Assert
    expect(compensated).toEqual(['order-1']);
    expect(state).toMatchObject({ status: 'compensated', resolutionReason: 'shipment cancelled' });
    expect(outcome).toEqual({ status: 'compensated', eventId, reason: 'shipment cancelled' });
    expect(await p.store.get(eventId)).toMatchObject({ status: 'compensated', resolution: { status: 'compensated', reason: 'shipment cancelled' } });
    expect((await handle.describe()).searchAttributes.OutboxStatus).toEqual(['compensated']);
  });

  test('discard needs a reason: without one it is rejected with a clear message; with one the event is discarded', async () => {
    // Arrange
    const { eventId, handle } = await stuckEvent();

    // Act
    const refused = await handle.executeUpdate(discardUpdate, { args: [{ reason: ' ' }] }).catch((err: unknown) => err);
    // A signal (the Web UI's way) without a reason, or with a malformed body, is ignored: still stuck.
    await handle.signal(discardSignal, { reason: '' });
    await handle.signal(discardSignal, {} as DiscardRequest);
    const afterSignals = await handle.query(stateQuery);
    const state = await handle.executeUpdate(discardUpdate, { args: [{ reason: 'order was a test' }] });

    // Assert
    expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(String((refused as WorkflowUpdateFailedError).cause?.message)).toContain('discard needs a reason');
    expect(afterSignals).toMatchObject({ status: 'stuck' });
    expect(state).toMatchObject({ status: 'discarded', resolutionReason: 'order was a test' });
    expect(await p.store.get(eventId)).toMatchObject({ status: 'discarded', resolution: { reason: 'order was a test' } });
  });

  test('a publication Kafka acknowledged but the store could not record is never escalated: it is recorded and the workflow completes as published, with no dead-letter copy', async () => {
    // Arrange: the store fails every write of the publication during the only attempt.
    const deadLetters = new KafkaCollector(p.kafka, p.deadLetterTopic);
    await deadLetters.start();
    const failures = { left: 4 };
    await p.startWorker({ store: failingMarkPublished(p.store, failures) });
    await p.startRelay(p.relay({ publishPolicy: { initialIntervalMs: 100, maximumIntervalMs: 200, maximumAttempts: 1, deadLetterTopic: p.deadLetterTopic } }));

    // Act
    const eventId = await p.placeOrder('order-1');
    await p.collector.waitForEventIds([eventId]);
    const outcome = await waitFor(() => p.client.workflow.getHandle(eventWorkflowId(eventId)).result(), { what: 'the workflow to close' });

    // Assert
    expect(failures.left).toBe(0);
    expect(outcome).toMatchObject({ status: 'published', receipt: { eventId } });
    const [message] = p.collector.withEventId(eventId);
    expect(await p.store.get(eventId)).toMatchObject({ status: 'published', kafka: { partition: message?.partition, offset: message?.offset } });
    expect(p.collector.withEventId(eventId)).toHaveLength(1);
    expect(deadLetters.withEventId(eventId)).toHaveLength(0);
    await deadLetters.stop();
  });

  test('a stuck event the store says is published (a late acknowledgement recorded) completes as published on compensate or discard: nothing is undone', async () => {
    // Arrange: two stuck events whose late publications were then recorded in the store.
    const compensated: string[] = [];
    const { eventId, handle } = await stuckEvent({ compensations: { 'orders.OrderShipped': async (event) => void compensated.push(event.id) } });
    const second = await p.shipOrder('order-2');
    const secondHandle = p.client.workflow.getHandle(eventWorkflowId(second));
    await waitFor(async () => (await secondHandle.query(stateQuery)).status === 'stuck', { what: 'the second event stuck' });
    for (const [id, offset] of [[eventId, '7'], [second, '8']] as const) {
      await p.store.markPublished({ eventId: id, topic: p.missingTopic, partition: 0, offset, publishedAt: new Date(), attempts: 1, alreadyPublished: false });
    }

    // Act
    const afterCompensate = await handle.executeUpdate(compensateUpdate, { args: [{ reason: 'shipment cancelled' }] });
    const afterDiscard = await secondHandle.executeUpdate(discardUpdate, { args: [{ reason: 'order was a test' }] });

    // Assert
    expect(compensated).toEqual([]);
    expect(afterCompensate).toMatchObject({ status: 'published' });
    expect(afterDiscard).toMatchObject({ status: 'published' });
    expect(await handle.result()).toMatchObject({ status: 'published', receipt: { eventId, offset: '7' } });
    expect(await secondHandle.result()).toMatchObject({ status: 'published', receipt: { eventId: second, offset: '8' } });
    expect(await p.store.get(eventId)).toMatchObject({ status: 'published', resolution: null });
    expect(await p.store.get(second)).toMatchObject({ status: 'published', resolution: null });
  });

  test("the CLI's retry of an event its workflow holds as stuck while the store says published (a late acknowledgement an earlier release recorded) settles it as published", async () => {
    // Arrange
    const { eventId, handle } = await stuckEvent();
    await p.store.markPublished({ eventId, topic: p.missingTopic, partition: 0, offset: '9', publishedAt: new Date(), attempts: 1, alreadyPublished: false });

    // Act
    const retried = await p.cli(['retry', eventId]);

    // Assert
    expect(retried).toMatchObject({ code: 0, output: expect.stringContaining('now published') });
    expect(await handle.result()).toMatchObject({ status: 'published', receipt: { eventId, offset: '9' } });
    expect(await p.store.get(eventId)).toMatchObject({ status: 'published', kafka: { offset: '9' } });
  });

  test('a compensation that is not registered leaves the event stuck, with the reason, and it can still be discarded', async () => {
    // Arrange
    const { handle } = await stuckEvent();

    // Act
    const afterCompensate = await handle.executeUpdate(compensateUpdate, { args: [{}] });
    const retryOfDiscarded = await handle.executeUpdate(discardUpdate, { args: [{ reason: 'nothing to undo' }] });

    // Assert
    expect(afterCompensate).toMatchObject({ status: 'stuck', lastError: expect.stringContaining('no compensation is registered for event type orders.OrderShipped') });
    expect(retryOfDiscarded).toMatchObject({ status: 'discarded' });
  });

  test('a compensation that keeps failing is tried a bounded number of times: the event stays stuck with the failure, and can still be discarded', async () => {
    // Arrange
    let calls = 0;
    const { eventId, handle } = await stuckEvent({
      compensations: {
        'orders.OrderShipped': async () => {
          calls += 1;
          throw new Error('the warehouse refused the cancellation');
        },
      },
    });

    // Act
    const afterCompensate = await handle.executeUpdate(compensateUpdate, { args: [{ reason: 'cancel it' }] });
    const afterDiscard = await handle.executeUpdate(discardUpdate, { args: [{ reason: 'cancelled by phone' }] });

    // Assert
    expect(afterCompensate).toMatchObject({ status: 'stuck', lastError: 'compensation failed: the warehouse refused the cancellation' });
    expect(calls).toBe(5);
    expect(afterDiscard).toMatchObject({ status: 'discarded', resolutionReason: 'cancelled by phone' });
    expect(await p.store.get(eventId)).toMatchObject({ status: 'discarded' });
  });

  test('a dead-letter topic that does not exist does not block the operator: the event waits with the failure, and retry publishes it', async () => {
    // Arrange: the dead-letter topic is the missing topic too.
    const { eventId, handle } = await stuckEvent({ deadLetterTopic: p.missingTopic });
    await waitFor(async () => (await handle.query(stateQuery)).lastError?.includes('the dead-letter copy failed') === true, {
      what: 'the dead-letter copy to be given up',
      timeoutMs: 180_000,
    });
    await p.createMissingTopic();

    // Act
    const afterRetry = await handle.executeUpdate(retryUpdate);
    const outcome = await handle.result();

    // Assert
    expect(afterRetry).toMatchObject({ retryRounds: 1 });
    expect(outcome).toMatchObject({ status: 'published', receipt: { eventId } });
    expect(await p.store.get(eventId)).toMatchObject({ status: 'published' });
  });

  test('the CLI gives up on an action no worker carries out, within its --timeout, with a clear message', async () => {
    // Arrange
    const { eventId, worker } = await stuckEvent();
    await worker.shutdown();

    // Act
    const { code, output } = await p.cli(['retry', eventId, '--timeout', '3s']);

    // Assert
    expect(code).toBe(1);
    expect(output).toContain(`retry of event ${eventId} was not carried out within 3s (is a worker running?`);
  });

  test('a message larger than the topic accepts is not retried: it escalates after one attempt', async () => {
    // Arrange
    await p.startWorker();
    await p.startRelay(p.relay({ publishPolicy: { initialIntervalMs: 100, maximumIntervalMs: 200, maximumAttempts: 5 } }));

    // Act
    const eventId = await p.noteOrder('order-3', 'x'.repeat(5_000));
    const handle = p.client.workflow.getHandle(eventWorkflowId(eventId));
    await waitFor(async () => (await handle.query(stateQuery)).status === 'stuck', { what: 'the oversized event to be stuck' });

    // Assert
    const state = await handle.query(stateQuery);
    expect(state.attempts).toBe(1);
    expect(state.lastError).toMatch(/cannot be published: .*(too large|larger)/i);
  });
});
