import type { WorkflowClient } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import { extractTraceContext, inSpan, type OutboxEvent } from '../domain/outbox';
import { OutboxSearchAttributes } from '../workflows/search-attributes';
import type { PublishEventInput, PublishPolicy } from '../workflows/types';

/** Workflow ids are `<prefix><eventId>`. */
export const DEFAULT_WORKFLOW_ID_PREFIX = 'outbox-';

export function eventWorkflowId(eventId: string, prefix = DEFAULT_WORKFLOW_ID_PREFIX): string {
  return `${prefix}${eventId}`;
}

export type StartOutcome = 'started' | 'duplicate';

/**
 * Starts the publish workflow of one event. A second start of the same event, running or closed,
 * is refused by Temporal (REJECT_DUPLICATE, FAIL on conflict) and reported as `duplicate`: the
 * normal path of deduplication, not an error.
 */
export async function startEventWorkflow(
  client: WorkflowClient,
  event: OutboxEvent,
  options: { taskQueue: string; policy: PublishPolicy; workflowIdPrefix?: string },
): Promise<StartOutcome> {
  const input: PublishEventInput = { eventId: event.id, policy: options.policy };
  // The start continues the write's trace; Temporal's OpenTelemetry client interceptor (when the
  // client has it) carries it on into the workflow.
  return inSpan('outbox.relay.start', extractTraceContext(event.headers), { 'txoutbox.event_id': event.id }, () => start(client, event, input, options));
}

async function start(
  client: WorkflowClient,
  event: OutboxEvent,
  input: PublishEventInput,
  options: { taskQueue: string; workflowIdPrefix?: string },
): Promise<StartOutcome> {
  try {
    await client.start('publishEventWorkflow', {
      taskQueue: options.taskQueue,
      workflowId: eventWorkflowId(event.id, options.workflowIdPrefix),
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      args: [input],
      typedSearchAttributes: [
        { key: OutboxSearchAttributes.status, value: event.status },
        { key: OutboxSearchAttributes.eventType, value: event.type },
        { key: OutboxSearchAttributes.aggregateId, value: event.aggregateId },
        { key: OutboxSearchAttributes.topic, value: event.topic },
      ],
      memo: {
        eventId: event.id,
        type: event.type,
        schemaVersion: event.schemaVersion,
        aggregateType: event.aggregateType,
        aggregateId: event.aggregateId,
        topic: event.topic,
        key: event.key,
        occurredAt: event.occurredAt.toISOString(),
        payloadHash: event.payloadHash,
      },
    });
    return 'started';
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return 'duplicate';
    throw err;
  }
}
