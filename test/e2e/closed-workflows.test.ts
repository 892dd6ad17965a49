/**
 * An event whose workflow closed before it was published (terminated or cancelled in the Web UI,
 * failed early) is never left pending or stuck with nobody to act: the sweeper, the key sequencer
 * and the CLI take it up again (issue 15 item 2).
 */
import type { Producer } from 'kafkajs';
import { eventWorkflowId } from '../../workers/relay/start-event-workflow';
import { ExitCode } from '../../workers/cli/cli';
import { KafkaCollector } from '../support/kafka-collector';
import { TestPipeline } from '../support/pipeline';
import { STORE_KINDS } from '../support/pipeline-store';
import { waitFor } from '../support/servers';

describe.each(STORE_KINDS)('events whose workflow closed before publishing (%s store)', (kind) => {
  let p: TestPipeline;
  /** While true, every publish fails (a broker outage, as the worker sees it). */
  let brokerDown = true;
  const gate = (producer: Pick<Producer, 'send'>): Pick<Producer, 'send'> => ({
    send: async (record) => {
      if (brokerDown) throw Object.assign(new Error('broker unavailable (test gate)'), { retriable: true });
      return producer.send(record);
    },
  });
  const retryForever = { initialIntervalMs: 100, maximumIntervalMs: 200, maximumAttempts: 0 };

  beforeEach(async () => {
    brokerDown = true;
    p = await new TestPipeline(kind).setup();
  });

  afterEach(async () => {
    await p.teardown();
  });

  /** Waits for a failed attempt (the workflow owns the event), then terminates the workflow. */
  async function terminateBeforePublishing(eventId: string): Promise<void> {
    await waitFor(async () => ((await p.store.get(eventId))?.attempts ?? 0) >= 1, { what: `a failed attempt of ${eventId}` });
    await p.client.workflow.getHandle(eventWorkflowId(eventId)).terminate('terminated from the Web UI (test)');
  }

  test('a terminated workflow: the next sweep starts a new run and the event is published once', async () => {
    // Arrange
    await p.startWorker({ wrapProducer: gate });
    const relay = p.relay({ sweepIntervalMs: 3_600_000, sweepGraceMs: 0, publishPolicy: retryForever });
    await p.startRelay(relay);
    const eventId = await p.placeOrder('order-1');
    await terminateBeforePublishing(eventId);
    brokerDown = false;

    // Act
    const sweep = await relay.sweepNow();
    await p.collector.waitForEventIds([eventId]);

    // Assert
    expect(sweep).toEqual({ found: 1, started: 1, duplicates: 0 });
    expect(p.collector.withEventId(eventId)).toHaveLength(1);
    await p.markedPublished(eventId);
  });

  test('fast-path topic: an event a terminated workflow owned is published by the next sweep', async () => {
    // Arrange: the event went to a workflow (a relay without the fast path), which claimed it.
    await p.startWorker({ wrapProducer: gate });
    await p.startRelay(p.relay({ publishPolicy: retryForever }));
    const eventId = await p.placeOrder('order-1');
    await terminateBeforePublishing(eventId);
    brokerDown = false;

    // Act: a relay with the fast path sweeps.
    const relay = p.relay({ sweepIntervalMs: 3_600_000, sweepGraceMs: 0, publishPolicy: retryForever, fastPath: await p.fastPath() });
    await relay.sweepNow();
    await p.collector.waitForEventIds([eventId]);

    // Assert
    expect(p.collector.withEventId(eventId)).toHaveLength(1);
    await p.markedPublished(eventId);
  });

  test('an ordered event whose workflow was terminated is run again by its key sequencer, and its key moves on in order', async () => {
    // Arrange
    await p.startWorker({ wrapProducer: gate });
    await p.startRelay(p.relay({ publishPolicy: retryForever }));
    const add = (line: number) => p.inTransaction((tx) => p.outbox.add({ type: 'orders.LineAdded', aggregateId: 'order-1', payload: { orderId: 'order-1', line } }, tx));
    const first = await add(1);
    const second = await add(2);
    await terminateBeforePublishing(first.id);

    // Act
    brokerDown = false;
    await p.collector.waitForEventIds([first.id, second.id], 90_000);

    // Assert
    const lines = p.collector.messages.filter((m) => m.key === 'order-1').sort((a, b) => Number(a.offset) - Number(b.offset)).map((m) => m.cloudEvent.id);
    expect(lines).toEqual([first.id, second.id]);
  });

  test('the CLI acts on a stuck event whose workflow is gone: retry reopens it for the sweeper, discard discards it', async () => {
    // Arrange: two events for a topic that does not exist escalate at once; their workflows are terminated.
    await p.startWorker();
    const relay = p.relay({ sweepIntervalMs: 3_600_000, sweepGraceMs: 0, publishPolicy: { ...retryForever, maximumAttempts: 3 } });
    await p.startRelay(relay);
    const [toRetry, toDiscard] = [await p.shipOrder('order-1'), await p.shipOrder('order-2')];
    for (const eventId of [toRetry, toDiscard]) {
      await waitFor(async () => (await p.store.get(eventId))?.status === 'stuck', { what: `${eventId} stuck` });
      await p.client.workflow.getHandle(eventWorkflowId(eventId)).terminate('terminated from the Web UI (test)');
    }

    // Act
    const retried = await p.cli(['retry', toRetry]);
    const discarded = await p.cli(['discard', toDiscard, '--reason', 'duplicate order', '--yes']);
    await p.createMissingTopic();
    const delivered = new KafkaCollector(p.kafka, p.missingTopic);
    await delivered.start();
    const sweep = await relay.sweepNow();
    await delivered.waitForEventIds([toRetry]);
    await delivered.stop();

    // Assert
    expect(retried).toMatchObject({ code: ExitCode.ok, output: expect.stringContaining('pending') });
    expect(discarded).toMatchObject({ code: ExitCode.ok, output: expect.stringContaining('discarded') });
    expect(sweep).toMatchObject({ found: 1, started: 1 });
    expect(await p.store.get(toDiscard)).toMatchObject({ status: 'discarded' });
  });
});
