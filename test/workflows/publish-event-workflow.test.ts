/**
 * The publish workflow's own logic on the real Temporal dev server, with its activity replaced by
 * small stand-ins: retries under the given policy, the search attribute it sets, and no retry of
 * what can never succeed.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { temporal as proto } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import type { OutboxActivities } from '../../activities';
import { DEFAULT_PUBLISH_POLICY, type PublishEventOutcome, type PublishPolicy, type PublishReceipt } from '../../workflows/types';
import { outboxWorkflowBundle } from '../support/pipeline';
import { uniqueName, waitFor } from '../support/servers';
import { stateQuery } from '../../workflows/signals';
import { useTemporalConnections } from '../support/temporal-connections';

const EventType = proto.api.enums.v1.EventType;
type EventType = proto.api.enums.v1.EventType;
const policy = { ...DEFAULT_PUBLISH_POLICY, initialIntervalMs: 50, maximumIntervalMs: 100 };

describe('publishEventWorkflow', () => {
  const temporal = useTemporalConnections();

  async function run(publishEvent: OutboxActivities['publishEvent'], eventId = uniqueName('evt'), runPolicy: PublishPolicy = policy) {
    const taskQueue = uniqueName('wf-publish');
    const worker = await Worker.create({ connection: temporal.workerConnection, taskQueue, workflowBundle: await outboxWorkflowBundle(), activities: { publishEvent } });
    const workflowId = `outbox-${eventId}`;
    const outcome = await worker.runUntil(
      temporal.client.workflow.execute('publishEventWorkflow', { taskQueue, workflowId, args: [{ eventId, policy: runPolicy }] }).then(
        (value: PublishEventOutcome) => ({ value, error: undefined }),
        (error: unknown) => ({ value: undefined, error }),
      ),
    );
    const handle = temporal.client.workflow.getHandle(workflowId);
    const description = await handle.describe();
    const history = (await handle.fetchHistory()).events ?? [];
    const count = (type: EventType) => history.filter((e) => e.eventType === type).length;
    return { ...outcome, description, activityTasks: count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED), localActivities: history.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity').length };
  }

  test('retries a failing publish under the policy until it succeeds, then marks the workflow published', async () => {
    // Arrange
    let calls = 0;
    const publishEvent = async (eventId: string): Promise<PublishReceipt> => {
      calls += 1;
      if (calls < 3) throw ApplicationFailure.retryable('broker unavailable', 'PUBLISH_FAILED');
      return { eventId, topic: 't', partition: 0, offset: '7', publishedAt: new Date(0).toISOString(), attempts: calls, alreadyPublished: false };
    };

    // Act
    const { value, description } = await run(publishEvent);

    // Assert
    expect(calls).toBe(3);
    expect(value).toMatchObject({ status: 'published', receipt: { offset: '7', attempts: 3 } });
    expect(description.searchAttributes.OutboxStatus).toEqual(['published']);
    expect(description.status.name).toBe('COMPLETED');
  });

  test('an event missing from the store fails at once, without retries', async () => {
    // Arrange
    let calls = 0;
    const publishEvent = async (eventId: string): Promise<PublishReceipt> => {
      calls += 1;
      throw ApplicationFailure.nonRetryable(`event ${eventId} is not in the outbox store`, 'EVENT_NOT_FOUND');
    };

    // Act
    const { error } = await run(publishEvent);

    // Assert
    expect(calls).toBe(1);
    expect(error).toBeInstanceOf(WorkflowFailedError);
  });

  const receiptOf = (eventId: string, attempts: number): PublishReceipt => ({ eventId, topic: 't', partition: 0, offset: '7', publishedAt: new Date(0).toISOString(), attempts, alreadyPublished: false });

  test('a first attempt that passes runs as a local activity: no activity task, one local-activity marker in the history', async () => {
    // Arrange
    const seen: Array<{ priorAttempts?: number }> = [];
    const publishEvent = async (eventId: string, options: { priorAttempts?: number } = {}): Promise<PublishReceipt> => {
      seen.push(options);
      return receiptOf(eventId, 1);
    };

    // Act
    const { value, activityTasks, localActivities } = await run(publishEvent);

    // Assert
    expect(value).toMatchObject({ status: 'published' });
    expect(seen).toEqual([{ replay: false }]);
    expect(activityTasks).toBe(0);
    expect(localActivities).toBe(1);
  });

  test('a first attempt that fails goes on as the activity, its attempts counted after the local one, so the Web UI shows the attempts and the pending activity', async () => {
    // Arrange
    const seen: Array<{ priorAttempts?: number }> = [];
    const publishEvent = async (eventId: string, options: { priorAttempts?: number } = {}): Promise<PublishReceipt> => {
      seen.push(options);
      if (seen.length < 3) throw ApplicationFailure.retryable('broker unavailable', 'PUBLISH_FAILED');
      return receiptOf(eventId, 3);
    };

    // Act
    const { value, activityTasks } = await run(publishEvent);

    // Assert
    expect(value).toMatchObject({ status: 'published', receipt: { attempts: 3 } });
    expect(seen).toEqual([{ replay: false }, { replay: false, priorAttempts: 1 }, { replay: false, priorAttempts: 1 }]);
    expect(activityTasks).toBe(1); // one activity, retried by the server: its second attempt passed
  });

  test('with firstAttemptLocal off every attempt is the activity', async () => {
    // Arrange
    const seen: Array<{ priorAttempts?: number }> = [];
    const publishEvent = async (eventId: string, options: { priorAttempts?: number } = {}): Promise<PublishReceipt> => {
      seen.push(options);
      return receiptOf(eventId, 1);
    };

    // Act
    const { value, activityTasks, localActivities } = await run(publishEvent, uniqueName('evt'), { ...policy, firstAttemptLocal: false });

    // Assert
    expect(value).toMatchObject({ status: 'published' });
    expect(seen).toEqual([{ replay: false }]);
    expect(activityTasks).toBe(1);
    expect(localActivities).toBe(0);
  });

  test('publishing as a local activity (localActivity), an event whose attempts are spent escalates as stuck: the workflow does not fail', async () => {
    // Arrange
    const taskQueue = uniqueName('wf-publish');
    const eventId = uniqueName('evt');
    let calls = 0;
    const escalated: string[] = [];
    const activities = {
      publishEvent: async (): Promise<PublishReceipt> => {
        calls += 1;
        throw ApplicationFailure.retryable('broker unavailable', 'PUBLISH_FAILED');
      },
      publishedReceipt: async (): Promise<PublishReceipt | null> => null,
      escalateEvent: async (id: string, lastError: string) => {
        escalated.push(`${id}: ${lastError}`);
        return { attempts: calls, status: 'stuck' as const };
      },
    };
    const worker = await Worker.create({ connection: temporal.workerConnection, taskQueue, workflowBundle: await outboxWorkflowBundle(), activities });
    const handle = await temporal.client.workflow.start('publishEventWorkflow', { taskQueue, workflowId: `outbox-${eventId}`, args: [{ eventId, policy: { ...policy, localActivity: true, maximumAttempts: 2 } }] });

    // Act
    const state = await worker.runUntil(async () => {
      await waitFor(() => escalated.length > 0, { what: 'the event escalated' });
      return waitFor(async () => {
        const now = await handle.query(stateQuery);
        return now.status === 'stuck' ? now : undefined;
      }, { what: 'the workflow to say stuck' });
    });
    const description = await handle.describe();
    await handle.terminate('test finished');

    // Assert
    expect(calls).toBe(2);
    expect(escalated).toEqual([`${eventId}: broker unavailable`]);
    expect(state).toMatchObject({ status: 'stuck', lastError: 'broker unavailable' });
    expect(description.status.name).toBe('RUNNING');
  });
});
