/**
 * The guarantees of DESIGN.md that the pipeline itself carries, on the real servers
 * (PostgreSQL adapter, Temporal dev server, Kafka broker).
 */
import { once } from 'node:events';
import { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { metricValue, OutboxMetrics } from '../../workers/process/metrics';
import { canonicalJson } from '../../domain/outbox';
import { eventWorkflowId } from '../../workers/relay/start-event-workflow';
import { DEFAULT_PUBLISH_POLICY } from '../../workflows/types';
import { crashBeforeCheckpoint } from '../support/faulty-store';
import { TestPipeline } from '../support/pipeline';
import { STORE_KINDS } from '../support/pipeline-store';
import { waitFor } from '../support/servers';

describe.each(STORE_KINDS)('outbox pipeline on Temporal and Kafka (%s store)', (kind) => {
  let p: TestPipeline;

  beforeEach(async () => {
    p = await new TestPipeline(kind).setup();
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
    expect(row).toEqual({ id: eventId, status: 'published', kafka_offset: message?.offset, owner: 'workflow' });
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
    expect(await p.db.orderIds()).toEqual(['order-committed']);
  });

  /** Runs a relay over one event so that its feed has a saved position, then stops it. */
  async function establishCheckpoint(): Promise<string> {
    const relay = p.relay();
    const running = await relay.start();
    const checkpointed = once(relay, 'checkpoint');
    const first = await p.placeOrder('order-0');
    await waitForBatchWith(relay, 1);
    await checkpointed;
    await running.shutdown();
    await p.collector.waitForEventIds([first]);
    await waitFor(async () => (await p.eventRows())[0]?.status === 'published', { what: 'the first event to be marked published' });
    return first;
  }

  async function waitForBatchWith(relay: ReturnType<TestPipeline['relay']>, events: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const onBatch = (batch: { events: number }): void => {
        if (batch.events >= events) {
          relay.off('batch', onBatch);
          resolve();
        }
      };
      relay.on('batch', onBatch);
    });
  }

  test('restart of the relay loses nothing: killed between start and checkpoint, no loss and no second workflow', async () => {
    // Arrange
    await p.startWorker();
    const first = await establishCheckpoint();
    const crashes = { count: 0 };
    const ids = [];
    for (let i = 1; i <= 5; i++) ids.push(await p.placeOrder(`order-${i}`));
    const doomed = p.relay({ store: crashBeforeCheckpoint(p.store, crashes), retryDelayMs: 60_000 });
    const doomedBatch = once(doomed, 'batch');
    const doomedRunning = await doomed.start();
    const [startedBeforeCrash] = await doomedBatch;
    await waitFor(() => crashes.count > 0, { what: 'the relay to die before its checkpoint' });
    await doomedRunning.shutdown();

    // Act
    const restarted = p.relay();
    const replayed: Array<{ events: number; started: number; duplicates: number }> = [];
    restarted.on('batch', (b) => replayed.push(b));
    await p.startRelay(restarted);
    await p.collector.waitForEventIds([first, ...ids]);
    await waitFor(() => replayed.reduce((n, b) => n + b.events, 0) >= ids.length, { what: 'the restarted relay to re-read the batch' });

    // Assert
    expect(startedBeforeCrash).toEqual({ events: ids.length, started: ids.length, duplicates: 0 });
    expect(replayed.reduce((n, b) => n + b.duplicates, 0)).toBe(ids.length);
    expect(replayed.reduce((n, b) => n + b.started, 0)).toBe(0);
    expect(await p.workflowIds()).toEqual([first, ...ids].map((id) => eventWorkflowId(id)).sort());
    for (const id of [first, ...ids]) expect(p.collector.withEventId(id)).toHaveLength(1);
  });

  test('a relay that saves its position at most once a minute saves the batches it dispatched when it stops: a restart re-reads none of them', async () => {
    // Arrange: four events, each in a batch of its own.
    await p.startWorker();
    const relay = p.relay({ checkpointEveryMs: 60_000 });
    const saves: number[] = [];
    // Saves of dispatched events (an idle feed's batches are saved as they come, holding none).
    relay.on('checkpoint', ({ events }) => events > 0 && saves.push(events));
    const dispatched: number[] = [];
    relay.on('batch', ({ events }) => events > 0 && dispatched.push(events));
    const running = await p.startRelay(relay);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push(await p.placeOrder(`saved-${i}`));
      await waitFor(() => dispatched.length > i, { what: `event ${i} dispatched` });
    }
    const savesWhileRunning = [...saves];

    // Act
    await running.shutdown();
    const restarted = p.relay();
    const reread: number[] = [];
    restarted.on('batch', ({ events }) => reread.push(events));
    await p.startRelay(restarted);
    const after = await p.placeOrder('after-restart');
    await p.collector.waitForEventIds([...ids, after]);
    await waitFor(() => reread.reduce((a, b) => a + b, 0) > 0, { what: 'the restarted relay to read the new event' });

    // Assert: one save while it ran (its first event's, at once), one when it stopped, holding the other three.
    expect(dispatched).toEqual([1, 1, 1, 1]);
    expect(savesWhileRunning).toEqual([1]);
    expect(saves).toEqual([1, 3]);
    expect(reread.reduce((a, b) => a + b, 0)).toBe(1);
  });

  test('two relays at once: one workflow and one message per event', async () => {
    // Arrange
    await p.startWorker();
    await establishCheckpoint();
    const relays = [p.relay(), p.relay()];
    const started = [0, 0];
    relays.forEach((relay, i) => relay.on('batch', (b) => (started[i] = (started[i] ?? 0) + b.started)));
    await Promise.all(relays.map((relay) => p.startRelay(relay)));

    // Act
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => p.placeOrder(`order-${i + 1}`)));
    await p.collector.waitForEventIds(ids);
    await waitFor(async () => (await p.eventRows()).every((r) => r.status === 'published'), { what: 'all events published' });

    // Assert
    expect((started[0] ?? 0) + (started[1] ?? 0)).toBe(ids.length);
    const workflowIds = await p.workflowIds();
    for (const id of ids) {
      expect(workflowIds.filter((w) => w === eventWorkflowId(id))).toHaveLength(1);
      expect(p.collector.withEventId(id)).toHaveLength(1);
    }
  });

  test('events written while the relay is down are delivered after its restart', async () => {
    // Arrange
    await p.startWorker();
    await establishCheckpoint();

    // Act
    const ids = [];
    for (let i = 1; i <= 5; i++) ids.push(await p.placeOrder(`order-${i}`));
    await p.startRelay();
    await p.collector.waitForEventIds(ids);

    // Assert
    for (const id of ids) expect(p.collector.withEventId(id)).toHaveLength(1);
  });

  test('checkpoint lost: the sweeper delivers the events the feed no longer sees', async () => {
    // Arrange
    await p.startWorker();
    await establishCheckpoint();
    const ids = [];
    for (let i = 1; i <= 5; i++) ids.push(await p.placeOrder(`order-${i}`));
    await p.store.deleteCheckpoint('relay');

    // Act
    const relay = p.relay({ sweepIntervalMs: 600_000, sweepGraceMs: 0 });
    const gap = once(relay, 'gap');
    const swept = once(relay, 'sweep');
    await p.startRelay(relay);
    const [reason] = await gap;
    const [sweep] = await swept;
    await p.collector.waitForEventIds(ids);

    // Assert
    expect(reason).toBe('no-checkpoint');
    expect(sweep).toEqual({ found: ids.length, started: ids.length, duplicates: 0 });
    for (const id of ids) expect(p.collector.withEventId(id)).toHaveLength(1);
  });

  test('an already-published event is not published again by a new workflow run', async () => {
    // Arrange
    await p.startWorker();
    await p.startRelay();
    const eventId = await p.placeOrder('order-1');
    await p.collector.waitForEventIds([eventId]);
    const firstRun = await p.client.workflow.getHandle(eventWorkflowId(eventId)).result();

    // Act: as after Temporal's retention ended, a workflow under another id for the same event.
    const rerun = await p.client.workflow.execute('publishEventWorkflow', {
      taskQueue: p.taskQueue,
      workflowId: `rerun-${eventId}`,
      args: [{ eventId, policy: DEFAULT_PUBLISH_POLICY }],
    });

    // Assert
    expect(firstRun).toMatchObject({ status: 'published', receipt: { alreadyPublished: false } });
    expect(firstRun.status === 'published' && rerun.status === 'published').toBe(true);
    if (firstRun.status === 'published' && rerun.status === 'published') {
      expect(rerun.receipt).toMatchObject({ eventId, alreadyPublished: true, partition: firstRun.receipt.partition, offset: firstRun.receipt.offset });
    }
    await p.collector.waitForEventIds([eventId]);
    expect(p.collector.withEventId(eventId)).toHaveLength(1);
  });

  test('a second start of the same event id is refused by Temporal and counted as a duplicate', async () => {
    // Arrange
    await p.startWorker();
    await p.startRelay();
    const eventId = await p.placeOrder('order-1');
    await p.collector.waitForEventIds([eventId]);
    await p.client.workflow.getHandle(eventWorkflowId(eventId)).result();

    // Act
    const relay = p.relay({ sweepGraceMs: 0 });
    await p.db.setStatus(eventId, 'pending');
    const sweep = await relay.sweepNow();

    // Assert
    expect(sweep).toEqual({ found: 1, started: 0, duplicates: 1 });
    expect(await p.workflowIds()).toEqual([eventWorkflowId(eventId)]);
  });

  test('publish as a local activity (policy option): the same delivery with fewer history events', async () => {
    // Arrange
    await p.startWorker();
    await p.startRelay(p.relay({ publishPolicy: { localActivity: true } }));

    // Act
    const eventId = await p.placeOrder('order-1');
    await p.collector.waitForEventIds([eventId]);
    const handle = p.client.workflow.getHandle(eventWorkflowId(eventId));
    const outcome = await handle.result();
    const history = await handle.fetchHistory();

    // Assert
    expect(outcome).toMatchObject({ status: 'published', receipt: { eventId, alreadyPublished: false } });
    expect(p.collector.withEventId(eventId)).toHaveLength(1);
    const types = (history.events ?? []).map((e) => e.eventType);
    expect(types.length).toBeLessThan(12);
    expect(await p.store.get(eventId)).toMatchObject({ status: 'published' });
  });

  test.each([true, false])('eager workflow start %s: with relay and worker on one NativeConnection, the server hands the first workflow task back with the start', async (eager) => {
    // Arrange: a client on the worker's own connection.
    const connection = await NativeConnection.connect({ address: p.servers.temporalAddress });
    p.onTeardown(() => connection.close());
    const client = new Client({ connection });
    const metrics = new OutboxMetrics();
    await p.startWorker({ connection });
    await p.startRelay(p.relay({ workflowClient: client.workflow, eagerStart: eager, metrics }));

    // Act
    const eventIds = [await p.placeOrder('order-1'), await p.placeOrder('order-2')];
    await p.collector.waitForEventIds(eventIds);
    // Kafka has them before the store records them (the activity marks after the acknowledgement).
    await waitFor(async () => (await p.eventRows()).every((r) => r.status === 'published'), { what: 'both events marked published' });

    // Assert
    expect(await metricValue(metrics.registry, 'txoutbox_workflows_started_eagerly_total')).toBe(eager ? 2 : 0);
    expect(await metricValue(metrics.registry, 'txoutbox_workflows_started_total', { source: 'feed' })).toBe(2);
    for (const eventId of eventIds) {
      expect(await p.store.get(eventId)).toMatchObject({ status: 'published' });
      expect(p.collector.withEventId(eventId)).toHaveLength(1);
    }
  });
});
