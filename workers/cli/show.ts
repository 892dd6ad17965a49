/** `show`: an event as the store has it, with its workflow's state and its key's sequencer. */
import { WorkflowNotFoundError } from '@temporalio/client';
import { sequencerQuery, stateQuery, type EventWorkflowState, type SequencerState } from '../../workflows/signals';
import { eventWorkflowId, sequencerWorkflowId } from '../relay/start-event-workflow';
import type { Context } from './connect';
import { describeEvent } from './events';
import { CliError, ExitCode, type Print } from './io';

export async function show(ctx: Context, eventId: string, print: Print): Promise<ExitCode> {
  const event = await (await ctx.store()).get(eventId);
  if (event === null) throw new CliError(`event ${eventId} is not in the outbox store`, ExitCode.notFound);
  const handle = (await ctx.client()).workflow.getHandle(eventWorkflowId(eventId, ctx.config.workflowIdPrefix));
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
    sequencer = await (await ctx.client()).workflow
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
