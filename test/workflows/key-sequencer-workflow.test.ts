/**
 * The key sequencer's own logic on the real Temporal dev server, with its activities replaced by
 * small stand-ins (the store's next open sequence is a variable the test moves).
 */
import { Worker } from '@temporalio/worker';
import type { OutboxActivities } from '../../activities';
import { ApplicationFailure } from '@temporalio/common';
import { enqueueSignal, sequencerQuery, type EnqueuedEvent } from '../../workflows/signals';
import { DEFAULT_PUBLISH_POLICY, type PublishReceipt } from '../../workflows/types';
import { outboxWorkflowBundle } from '../support/pipeline';
import { uniqueName, waitFor } from '../support/servers';
import { useTemporalConnections } from '../support/temporal-connections';

const policy = { ...DEFAULT_PUBLISH_POLICY, initialIntervalMs: 50, maximumIntervalMs: 100 };

describe('keySequencerWorkflow', () => {
  const temporal = useTemporalConnections();

  test('a key whose next events were settled elsewhere (the fast path) moves on as soon as a later event arrives, not after the idle timeout', async () => {
    // Arrange: the store's next open sequence; events 2 and 3 will be published by the fast path.
    let open = 1;
    const published: string[] = [];
    const activities: Pick<OutboxActivities, 'publishEvent' | 'publishRun' | 'nextOpenSequence' | 'waitUntilSettled'> = {
      // No run is published: each event goes through its own workflow (the path these tests follow).
      publishRun: async () => ({ published: [], following: [] }),
      nextOpenSequence: async () => open,
      waitUntilSettled: async () => undefined,
      publishEvent: async (eventId: string): Promise<PublishReceipt> => {
        published.push(eventId);
        return { eventId, topic: 't', partition: 0, offset: String(published.length), publishedAt: new Date(0).toISOString(), attempts: 1, alreadyPublished: false };
      },
    };
    const taskQueue = uniqueName('wf-sequencer');
    const worker = await Worker.create({ connection: temporal.workerConnection, taskQueue, workflowBundle: await outboxWorkflowBundle(), activities });
    const event = (sequence: number): EnqueuedEvent => ({ eventId: uniqueName(`e${sequence}`), sequence, type: 'orders.LineAdded', aggregateId: 'order-1' });
    const [first, fourth] = [event(1), event(4)];
    const sequencerId = `outbox-key-${taskQueue}/order-1`;

    // Act
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.signalWithStart('keySequencerWorkflow', {
        taskQueue,
        workflowId: sequencerId,
        args: [{ topic: 't', key: 'order-1', policy }],
        signal: enqueueSignal,
        signalArgs: [first],
      });
      await waitFor(() => published.includes(first.eventId), { what: 'the first event published' });
      open = 4; // 2 and 3 went the fast way while the sequencer waited for 2
      await handle.signal(enqueueSignal, fourth);
      await waitFor(() => published.includes(fourth.eventId), { timeoutMs: 60_000, what: 'the fourth event published' });
      await handle.terminate('test finished');
    });

    // Assert
    expect(published).toEqual([first.eventId, fourth.eventId]);
  });

  /** A worker over stand-in activities: `open()` is the store's next open sequence, `publish` decides each attempt. */
  async function sequencerWorker(open: () => number | null, publish: (eventId: string) => Promise<void> = async () => undefined) {
    const published: string[] = [];
    const activities: Pick<OutboxActivities, 'publishEvent' | 'publishRun' | 'nextOpenSequence' | 'waitUntilSettled'> = {
      // No run is published: each event goes through its own workflow (the path these tests follow).
      publishRun: async () => ({ published: [], following: [] }),
      nextOpenSequence: async () => open(),
      waitUntilSettled: async () => undefined,
      publishEvent: async (eventId: string): Promise<PublishReceipt> => {
        await publish(eventId);
        published.push(eventId);
        return { eventId, topic: 't', partition: 0, offset: String(published.length), publishedAt: new Date(0).toISOString(), attempts: 1, alreadyPublished: false };
      },
    };
    const taskQueue = uniqueName('wf-sequencer');
    const worker = await Worker.create({ connection: temporal.workerConnection, taskQueue, workflowBundle: await outboxWorkflowBundle(), activities });
    return { worker, taskQueue, published, sequencerId: `outbox-key-${taskQueue}/order-1` };
  }
  const event = (sequence: number): EnqueuedEvent => ({ eventId: uniqueName(`e${sequence}`), sequence, type: 'orders.LineAdded', aggregateId: 'order-1' });

  test('buffered events the store settled another way are dropped, so they never count towards a full buffer', async () => {
    // Arrange: events 2-4 were published by the fast path; 3 and 4 reach the sequencer late, while it waits for 2.
    let open = 1;
    const { worker, taskQueue, published, sequencerId } = await sequencerWorker(() => open);
    const [e1, e3, e4] = [event(1), event(3), event(4)];

    // Act
    const state = await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.signalWithStart('keySequencerWorkflow', {
        taskQueue,
        workflowId: sequencerId,
        args: [{ topic: 't', key: 'order-1', policy, bufferLimit: 3 }],
        signal: enqueueSignal,
        signalArgs: [e1],
      });
      await waitFor(() => published.includes(e1.eventId), { what: 'the first event published' });
      open = 5;
      await handle.signal(enqueueSignal, [e3, e4]);
      const moved = await waitFor(async () => {
        const now = await handle.query(sequencerQuery);
        return now.next === 5 ? now : undefined;
      }, { what: 'the sequencer to learn that 2-4 were settled' });
      await handle.terminate('test finished');
      return moved;
    });

    // Assert
    expect(state).toMatchObject({ next: 5, holding: null, waiting: [], full: false });
    expect(published).toEqual([e1.eventId]);
  });

  test('a held event settled another way while its workflow still runs no longer holds the key: the sequencer asks the store while it waits', async () => {
    // Arrange: event 1's publication fails on every attempt (its workflow keeps retrying), until the
    // store says it was settled (a late acknowledgement, the CLI).
    let open = 1;
    const { worker, taskQueue, published, sequencerId } = await sequencerWorker(
      () => open,
      async (eventId) => {
        if (eventId === e1.eventId) throw ApplicationFailure.retryable('broker unavailable (stand-in)', 'PUBLISH_FAILED');
      },
    );
    const [e1, e2] = [event(1), event(2)];

    // Act
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.signalWithStart('keySequencerWorkflow', {
        taskQueue,
        workflowId: sequencerId,
        args: [{ topic: 't', key: 'order-1', policy: { ...policy, maximumAttempts: 0 }, recheckMs: 1_000 }],
        signal: enqueueSignal,
        signalArgs: [[e1, e2]],
      });
      await waitFor(async () => (await handle.query(sequencerQuery)).holding === e1.eventId, { what: 'event 1 held' });
      open = 2;
      await waitFor(() => published.includes(e2.eventId), { what: 'event 2 published while event 1 is still retried' });
      await handle.terminate('test finished');
      await temporal.client.workflow.getHandle(`outbox-${e1.eventId}`).terminate('test finished');
    });

    // Assert
    expect(published).toEqual([e2.eventId]);
  });

  test('a stale re-delivery of an event whose workflow already completed is passed at once: the store is asked before any wait', async () => {
    // Arrange: event 1's publish workflow ran to completion before the sequencer got the event again.
    let asked = 0;
    const { worker, taskQueue, published, sequencerId } = await sequencerWorker(() => (asked++ === 0 ? 1 : 2));
    const [e1, e2] = [event(1), event(2)];

    // Act
    await worker.runUntil(async () => {
      await temporal.client.workflow.execute('publishEventWorkflow', { taskQueue, workflowId: `outbox-${e1.eventId}`, args: [{ eventId: e1.eventId, policy }] });
      const handle = await temporal.client.workflow.signalWithStart('keySequencerWorkflow', {
        taskQueue,
        workflowId: sequencerId,
        args: [{ topic: 't', key: 'order-1', policy }],
        signal: enqueueSignal,
        signalArgs: [[e1, e2]],
      });
      // Within the default 30 s recheck: the sequencer must not wait it out before asking.
      await waitFor(() => published.includes(e2.eventId), { timeoutMs: 20_000, what: 'event 2 published' });
      await handle.terminate('test finished');
    });

    // Assert
    expect(published).toEqual([e1.eventId, e2.eventId]);
  });
});
