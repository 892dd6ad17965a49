/** `list` and `show`: events as the store has them, with their workflow's state. */
import { WorkflowNotFoundError } from '@temporalio/client';
import { TYPE_NAME, type ListQuery, type OutboxEvent, type OutboxStatus } from '../../domain/outbox';
import { sequencerQuery, stateQuery, type EventWorkflowState, type SequencerState } from '../../workflows/signals';
import { eventWorkflowId, sequencerWorkflowId } from '../relay/start-event-workflow';
import type { Context } from './connect';
import { CliError, ExitCode, type Print, type Values } from './io';
import { STATUSES } from './usage';

export async function list(ctx: Context, values: Values, print: Print): Promise<ExitCode> {
  const statusFilter = values.status ?? 'stuck';
  if (!STATUSES.includes(statusFilter as OutboxStatus)) throw new CliError(`--status must be one of ${STATUSES.join(', ')}`, ExitCode.usage);
  const limit = values.limit === undefined ? 50 : Number(values.limit);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) throw new CliError('--limit must be a whole number from 1 to 10000', ExitCode.usage);
  if (values.type !== undefined) {
    if (!TYPE_NAME.test(values.type)) throw new CliError(`--type ${JSON.stringify(values.type)} is not an event type name (${TYPE_NAME.source})`, ExitCode.usage);
    if ((await ctx.store.list({ type: values.type, limit: 1 })).length === 0) {
      throw new CliError(`no events of type ${JSON.stringify(values.type)} in the outbox store (in any status)`, ExitCode.notFound);
    }
  }
  const events = await ctx.store.list({ status: statusFilter as OutboxStatus, type: values.type, limit });
  const human = events.length === 0 ? `no ${statusFilter} events` : events.map((e) => `${e.id}  ${e.type}  ${e.aggregateId}  attempts=${e.attempts}  ${e.lastError ?? ''}`).join('\n');
  print(human, events.map(summary));
  return ExitCode.ok;
}

export async function show(ctx: Context, eventId: string, print: Print): Promise<ExitCode> {
  const event = await ctx.store.get(eventId);
  if (event === null) throw new CliError(`event ${eventId} is not in the outbox store`, ExitCode.notFound);
  const handle = ctx.client.workflow.getHandle(eventWorkflowId(eventId, ctx.config.workflowIdPrefix));
  let workflow: { status: string; state: EventWorkflowState | null; historyEvents: number; activityAttempts: number } | null = null;
  try {
    const description = await handle.describe();
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const state = await handle.query(stateQuery).catch(() => null);
    workflow = {
      status: description.status.name,
      state,
      historyEvents: events.length,
      activityAttempts: events.filter((e) => e.activityTaskStartedEventAttributes).reduce((n, e) => n + (e.activityTaskStartedEventAttributes?.attempt ?? 1), 0),
    };
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  // An ordered event may wait behind an earlier one of its key: its sequencer says which.
  let sequencer: SequencerState | null = null;
  if (event.sequence !== null) {
    sequencer = await ctx.client.workflow
      .getHandle(sequencerWorkflowId(event.topic, event.key, ctx.config.workflowIdPrefix))
      .query(sequencerQuery)
      .catch(() => null);
  }
  const heldBy = sequencer && sequencer.holding !== eventId && sequencer.waiting.includes(eventId) ? sequencer.holding : null;
  const link = `${ctx.config.temporalUiUrl}/namespaces/${ctx.config.temporalNamespace}/workflows/${eventWorkflowId(eventId, ctx.config.workflowIdPrefix)}`;
  const human = [
    ...describeEvent(event),
    workflow
      ? `workflow ${eventWorkflowId(eventId, ctx.config.workflowIdPrefix)}: ${workflow.status}, ${workflow.historyEvents} history events${workflow.state ? `, ${workflow.state.status} after ${workflow.state.attempts} attempt(s), ${workflow.state.retryRounds} retry round(s)${workflow.state.lastError ? `, last error: ${workflow.state.lastError}` : ''}` : ''}`
      : `workflow ${eventWorkflowId(eventId, ctx.config.workflowIdPrefix)}: not found (${event.status === 'published' ? "published by the relay's fast path, or past Temporal's retention" : 'not started yet, or past Temporal\'s retention'})`,
    ...(event.sequence !== null
      ? [`ordered: sequence ${event.sequence} of key ${event.key}${heldBy ? `, held back by ${heldBy} (${sequencer?.waiting.length ?? 0} waiting)` : ''}`]
      : []),
    `Web UI: ${link}`,
  ].join('\n');
  print(human, { event, workflow, sequencer, heldBy, webUi: link });
  return ExitCode.ok;
}

/** An event as text lines (`show` without --json): its fields, then its payload as one JSON line. */
function describeEvent(event: OutboxEvent): string[] {
  return [
    `event ${event.id}: ${event.type} v${event.schemaVersion}, ${event.status}${event.attempts > 0 ? ` after ${event.attempts} attempt(s)` : ''}`,
    `  aggregate ${event.aggregateType} ${event.aggregateId}; topic ${event.topic}, key ${event.key}; occurred at ${event.occurredAt.toISOString()}`,
    ...(event.kafka ? [`  in Kafka at partition ${event.kafka.partition}, offset ${event.kafka.offset}${event.publishedAt ? `, published at ${event.publishedAt.toISOString()}` : ''}`] : []),
    ...(event.lastError ? [`  last error: ${event.lastError}`] : []),
    ...(event.resolution ? [`  ${event.resolution.status}${event.resolution.reason ? `: ${event.resolution.reason}` : ''}`] : []),
    `  payload: ${JSON.stringify(event.payload)}`,
  ];
}


/** Every event of a query, page by page (ids ascend, so each page starts after the last one's id). */
export async function listAll(
  list: (query: ListQuery) => Promise<OutboxEvent[]>,
  query: Omit<ListQuery, 'limit'>,
  pageSize = 1_000,
): Promise<OutboxEvent[]> {
  const all: OutboxEvent[] = [];
  for (let afterId = query.afterId; ; ) {
    const page = await list({ ...query, afterId, limit: pageSize });
    all.push(...page);
    if (page.length < pageSize) return all;
    afterId = page[page.length - 1]?.id;
  }
}

export function summary(e: OutboxEvent) {
  return { id: e.id, type: e.type, aggregateId: e.aggregateId, topic: e.topic, status: e.status, attempts: e.attempts, lastError: e.lastError, occurredAt: e.occurredAt };
}
