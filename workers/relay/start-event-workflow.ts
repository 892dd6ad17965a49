import { createHash } from 'node:crypto';
import { WorkflowNotFoundError, type WorkflowClient } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import { extractTraceContext, inSpan, type OutboxEvent } from '../../domain/outbox';
import { errorChain } from '../../domain/outbox/error-chain';
import { OutboxSearchAttributes } from '../../workflows/search-attributes';
import type { KeySequencerInput } from '../../workflows/key-sequencer';
import { sequencerQuery, type EnqueuedEvent, type SequencerState } from '../../workflows/signals';
import type { PublishEventInput, PublishPolicy } from '../../workflows/types';

/** Workflow ids are `<prefix><eventId>`. */
export const DEFAULT_WORKFLOW_ID_PREFIX = 'outbox-';

export function eventWorkflowId(eventId: string, prefix = DEFAULT_WORKFLOW_ID_PREFIX): string {
  return `${prefix}${eventId}`;
}

/**
 * `sequenced`: an ordered event handed to its key's sequencer, which starts its workflow in turn.
 * `refused`: Temporal refuses to start it, and always will (see `isPermanentStartError`): the event
 * is marked `stuck` with the reason, for an operator.
 */
export type StartOutcome = 'started' | 'duplicate' | 'sequenced' | 'refused';

/** Temporal's default limit on a workflow id (`limit.maxIDLength`), in bytes. */
export const MAX_WORKFLOW_ID_BYTES = 1000;

/**
 * Workflow id of the sequencer of one topic and key: `<prefix>key-<topic>/<key>`, readable in the
 * Web UI. A key too long for that (keys may have 1,024 bytes; Temporal takes 1,000 for the whole id)
 * is replaced by its SHA-256, `<prefix>key-<topic>/sha256:<hex>`; the sequencer's memo still holds
 * the key. Ids that fit stay as they were, so a running sequencer keeps its id across a deploy.
 */
export function sequencerWorkflowId(topic: string, key: string, prefix = DEFAULT_WORKFLOW_ID_PREFIX): string {
  const readable = `${prefix}key-${topic}/${key}`;
  if (Buffer.byteLength(readable, 'utf8') <= MAX_WORKFLOW_ID_BYTES) return readable;
  return `${prefix}key-${topic}/sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

/** gRPC status codes Temporal answers a start with when the request itself can never be accepted. */
const INVALID_ARGUMENT = 3;

/**
 * True when Temporal refused a workflow start for a reason in the request (gRPC INVALID_ARGUMENT:
 * an id, memo or search attribute over a limit, ...): starting it again can never succeed, unlike an
 * unavailable server or a timeout.
 */
export function isPermanentStartError(err: unknown): boolean {
  return hasGrpcCode(err, INVALID_ARGUMENT);
}

/** True when the error, or one of its causes (the client wraps gRPC errors), carries this gRPC status code. */
export function hasGrpcCode(err: unknown, code: number): boolean {
  return errorChain(err).some((e) => (e as { code?: unknown }).code === code);
}

/** How the relay starts an event's workflow. */
export interface StartOptions {
  taskQueue: string;
  policy: PublishPolicy;
  /** @default DEFAULT_WORKFLOW_ID_PREFIX */
  workflowIdPrefix?: string;
  /** Ask the server to hand the first workflow task back with the start (unordered events only). */
  eagerStart?: boolean;
  /** Called when the server did start it eagerly. */
  onEagerStart?: () => void;
  /** The buffer limit of a key sequencer this start opens. @default the sequencer's (500) */
  sequencerBufferLimit?: number;
  /** The run limit of a key sequencer this start opens (1: no runs). @default the sequencer's (100) */
  sequencerRunLimit?: number;
}

/**
 * Starts the publish workflow of one event. A second start of the same event while its workflow
 * runs, or after it completed, is refused by Temporal (ALLOW_DUPLICATE_FAILED_ONLY, FAIL on
 * conflict) and reported as `duplicate`: the normal path of deduplication, not an error. A workflow
 * that closed without completing (terminated, cancelled, failed, timed out) left its event pending
 * (the sweeper only finds pending events), so a new run is started for it.
 */
export async function startEventWorkflow(
  client: WorkflowClient,
  event: OutboxEvent,
  options: StartOptions,
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
  options: StartOptions,
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
  options: StartOptions,
): Promise<void> {
  const first = events[0];
  if (first === undefined) return;
  const sequencer: KeySequencerInput = {
    topic: first.topic,
    key: first.key,
    policy: options.policy,
    workflowIdPrefix: options.workflowIdPrefix ?? DEFAULT_WORKFLOW_ID_PREFIX,
    ...(options.sequencerBufferLimit === undefined ? {} : { bufferLimit: options.sequencerBufferLimit }),
    ...(options.sequencerRunLimit === undefined ? {} : { runLimit: options.sequencerRunLimit }),
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

/** How long a sweep waits for a sequencer to say what it holds. */
const SEQUENCER_QUERY_TIMEOUT_MS = 5_000;
/**
 * Most events of one key a sweep hands over in one signal: a sequencer publishes one event at a
 * time, so the rest can wait in the store for the next sweep, and its history never carries
 * signals of thousands of events (which made its workflow tasks slow to replay).
 */
export const SWEEP_KEY_HANDOVER_LIMIT = 200;

/**
 * The events of one topic and key (found by a sweep) to hand to their sequencer: the lowest
 * SWEEP_KEY_HANDOVER_LIMIT of those a running sequencer does not already have (not held, not waiting
 * in its buffer, not behind its next sequence). While its buffer is full, only those below its highest
 * waiting sequence: it keeps its lowest sequences, so each of them evicts a later one, and the
 * sequence it needs next always gets in (a full buffer of later events, which the feed keeps filling
 * on a busy key, once shut it out for good). None while it runs but does not answer (it has what it
 * was sent; the next sweep asks again). When no sequencer runs, the lowest SWEEP_KEY_HANDOVER_LIMIT
 * (a signal-with-start opens one).
 */
export async function eventsNotHeld(client: WorkflowClient, events: readonly OutboxEvent[], workflowIdPrefix = DEFAULT_WORKFLOW_ID_PREFIX): Promise<OutboxEvent[]> {
  const first = events[0];
  if (first === undefined) return [];
  const lowest = (list: readonly OutboxEvent[]): OutboxEvent[] => [...list].sort((a, b) => (a.sequence ?? 0) - (b.sequence ?? 0)).slice(0, SWEEP_KEY_HANDOVER_LIMIT);
  const handle = client.getHandle(sequencerWorkflowId(first.topic, first.key, workflowIdPrefix));
  try {
    // A closed run is not asked (a query would replay it on a worker): it holds nothing.
    if ((await handle.describe()).status.name !== 'RUNNING') return lowest(events);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return lowest(events);
    throw err;
  }
  let state: SequencerState;
  try {
    state = await client.connection.withDeadline(Date.now() + SEQUENCER_QUERY_TIMEOUT_MS, () => handle.query(sequencerQuery));
  } catch {
    return [];
  }
  const held = new Set([state.holding, ...state.waiting]);
  const below = state.full === true ? (state.highestWaiting ?? Infinity) : Infinity;
  return lowest(events.filter((e) => !held.has(e.id) && (state.next === null || (e.sequence ?? 0) >= state.next) && (e.sequence ?? 0) < below));
}

async function start(
  client: WorkflowClient,
  event: OutboxEvent,
  input: PublishEventInput,
  options: Omit<StartOptions, 'policy'>,
): Promise<StartOutcome> {
  try {
    const handle = await client.start('publishEventWorkflow', {
      taskQueue: options.taskQueue,
      // The server hands the first workflow task back in the start's reply, to the worker sharing
      // this client's NativeConnection (one round trip and one poll fewer). Ordered events go
      // through signal-with-start, which has no eager start.
      ...(options.eagerStart ? { requestEagerStart: true } : {}),
      workflowId: eventWorkflowId(event.id, options.workflowIdPrefix),
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
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
    // The server may decline (no worker of this connection polls the queue): a normal start then.
    if (handle.eagerlyStarted) options.onEagerStart?.();
    return 'started';
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return 'duplicate';
    throw err;
  }
}

/** A start that put the event in a workflow: its own, or its key's sequencer. */
export function wasStarted(outcome: StartOutcome): boolean {
  return outcome === 'started' || outcome === 'sequenced';
}
