import type { WorkflowClient } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import { extractTraceContext, inSpan, type OutboxEvent } from '../domain/outbox';
import { OutboxSearchAttributes } from '../workflows/search-attributes';
import type { KeySequencerInput } from '../workflows/key-sequencer';
import type { EnqueuedEvent } from '../workflows/signals';
import type { PublishEventInput, PublishPolicy } from '../workflows/types';

/** Workflow ids are `<prefix><eventId>`. */
export const DEFAULT_WORKFLOW_ID_PREFIX = 'outbox-';

export function eventWorkflowId(eventId: string, prefix = DEFAULT_WORKFLOW_ID_PREFIX): string {
  return `${prefix}${eventId}`;
}

/** `sequenced`: an ordered event handed to its key's sequencer, which starts its workflow in turn. */
export type StartOutcome = 'started' | 'duplicate' | 'sequenced';

/** Workflow id of the sequencer of one topic and key. */
export function sequencerWorkflowId(topic: string, key: string, prefix = DEFAULT_WORKFLOW_ID_PREFIX): string {
  return `${prefix}key-${topic}/${key}`;
}

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
  return inSpan('outbox.relay.start', extractTraceContext(event.headers), { 'txoutbox.event_id': event.id }, () =>
    event.sequence === null ? start(client, event, input, options) : enqueue(client, event, options),
  );
}

/** Ordered events go to their key's sequencer (started if it is not running), which keeps the order. */
async function enqueue(
  client: WorkflowClient,
  event: OutboxEvent,
  options: { taskQueue: string; policy: PublishPolicy; workflowIdPrefix?: string },
): Promise<StartOutcome> {
  await enqueueKey(client, [event], options);
  return 'sequenced';
}

/**
 * Hands ordered events of one topic and key to their sequencer in ONE signal-with-start: a sweep
 * that finds a held-back key's events again adds one signal to the sequencer's history, not one per
 * event (the sequencer ignores what it already has).
 */
export async function enqueueKey(
  client: WorkflowClient,
  events: readonly OutboxEvent[],
  options: { taskQueue: string; policy: PublishPolicy; workflowIdPrefix?: string },
): Promise<void> {
  const first = events[0];
  if (first === undefined) return;
  const sequencer: KeySequencerInput = {
    topic: first.topic,
    key: first.key,
    policy: options.policy,
    workflowIdPrefix: options.workflowIdPrefix ?? DEFAULT_WORKFLOW_ID_PREFIX,
  };
  const enqueued: EnqueuedEvent[] = events.map((e) => ({ eventId: e.id, sequence: e.sequence ?? 0, type: e.type, aggregateId: e.aggregateId }));
  await client.signalWithStart('keySequencerWorkflow', {
    taskQueue: options.taskQueue,
    workflowId: sequencerWorkflowId(first.topic, first.key, options.workflowIdPrefix),
    args: [sequencer],
    signal: 'enqueue',
    signalArgs: [enqueued.length === 1 ? (enqueued[0] as EnqueuedEvent) : enqueued],
    typedSearchAttributes: [
      { key: OutboxSearchAttributes.topic, value: first.topic },
      { key: OutboxSearchAttributes.aggregateId, value: first.aggregateId },
    ],
    memo: { topic: first.topic, key: first.key },
  });
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
