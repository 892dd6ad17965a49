/**
 * The publish workflow's own logic on the real Temporal dev server, with its activity replaced by
 * small stand-ins: retries under the given policy, the search attribute it sets, and no retry of
 * what can never succeed.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import type { OutboxActivities } from '../../activities';
import { DEFAULT_PUBLISH_POLICY, type PublishEventOutcome, type PublishReceipt } from '../../workflows/types';
import { outboxWorkflowBundle } from '../support/pipeline';
import { uniqueName } from '../support/servers';
import { useTemporalConnections } from '../support/temporal-connections';

const policy = { ...DEFAULT_PUBLISH_POLICY, initialIntervalMs: 50, maximumIntervalMs: 100 };

describe('publishEventWorkflow', () => {
  const temporal = useTemporalConnections();

  async function run(publishEvent: OutboxActivities['publishEvent'], eventId = uniqueName('evt')) {
    const taskQueue = uniqueName('wf-publish');
    const worker = await Worker.create({ connection: temporal.workerConnection, taskQueue, workflowBundle: await outboxWorkflowBundle(), activities: { publishEvent } });
    const workflowId = `outbox-${eventId}`;
    const outcome = await worker.runUntil(
      temporal.client.workflow.execute('publishEventWorkflow', { taskQueue, workflowId, args: [{ eventId, policy }] }).then(
        (value: PublishEventOutcome) => ({ value, error: undefined }),
        (error: unknown) => ({ value: undefined, error }),
      ),
    );
    const description = await temporal.client.workflow.getHandle(workflowId).describe();
    return { ...outcome, description };
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
});
