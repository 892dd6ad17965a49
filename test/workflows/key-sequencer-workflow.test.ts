/**
 * The key sequencer's own logic on the real Temporal dev server, with its activities replaced by
 * small stand-ins (the store's next open sequence is a variable the test moves).
 */
import { Worker } from '@temporalio/worker';
import type { OutboxActivities } from '../../activities';
import { enqueueSignal, type EnqueuedEvent } from '../../workflows/signals';
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
    const activities: Pick<OutboxActivities, 'publishEvent' | 'nextOpenSequence' | 'waitUntilSettled'> = {
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
});
