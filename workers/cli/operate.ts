/** What an operator does to events through Temporal: `retry`, `compensate`, `discard` (through the workflow, or the store when it is gone) and `replay`. */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { minEventIdAt, type OutboxEvent } from '../../domain/outbox';
import { compensateUpdate, discardUpdate, retryUpdate, stateQuery, type EventWorkflowState } from '../../workflows/signals';
import type { PublishEventInput } from '../../workflows/types';
import { eventWorkflowId, hasGrpcCode } from '../relay/start-event-workflow';
import type { Context } from './connect';
import { listAll } from './events';
import { CliError, ExitCode, confirmOrRefuse, type Io, type Print, type Values } from './io';
import { parseDuration, parseTime } from './parse';

export async function operate(
  ctx: Context,
  eventId: string,
  action: 'retry' | 'compensate' | 'discard',
  reason: string | undefined,
  values: Values,
  io: Io,
  print: Print,
): Promise<ExitCode> {
  const timeout = values.timeout ?? DEFAULT_OPERATE_TIMEOUT;
  const timeoutMs = parseDuration(timeout);
  const event = await (await ctx.store()).get(eventId);
  if (event === null) throw new CliError(`event ${eventId} is not in the outbox store`, ExitCode.notFound);
  const handle = (await ctx.client()).workflow.getHandle(eventWorkflowId(eventId, ctx.config.workflowIdPrefix));
  // A workflow may still wait as stuck for an event the store has since seen published (a late
  // acknowledgement recorded by an earlier release, whose workflows did not wait such sends out): it
  // is sent the action all the same, and settles as the store says, undoing and dropping nothing.
  const waitsAsStuck = async (): Promise<boolean> => (await handle.query(stateQuery).catch(() => null))?.status === 'stuck';
  if (event.status !== 'stuck' && !(await waitsAsStuck())) throw new CliError(`event ${eventId} is ${event.status}: ${action} applies only to a stuck event`, ExitCode.refused);
  if (action !== 'retry') await confirmOrRefuse(io, values, `${action} event ${eventId} (${event.type}, ${event.aggregateId})?`);
  let state: EventWorkflowState;
  try {
    // The whole update (its request and the wait for its outcome) within the timeout.
    state = await (await ctx.client()).connection.withDeadline(Date.now() + timeoutMs, () =>
      action === 'retry'
        ? handle.executeUpdate(retryUpdate)
        : action === 'compensate'
          ? handle.executeUpdate(compensateUpdate, { args: [{ reason }] })
          : handle.executeUpdate(discardUpdate, { args: [{ reason: reason ?? '' }] }),
    );
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new CliError(`refused: ${err.cause?.message ?? err.message}`, ExitCode.refused);
    if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError || hasGrpcCode(err, DEADLINE_EXCEEDED)) {
      throw new CliError(
        `${action} of event ${eventId} was not carried out within ${timeout} (is a worker running? a compensation is tried for up to about ` +
          `a minute and a half); the workflow still has the request, if it accepted it: see \`txoutbox show ${eventId}\``,
        ExitCode.failure,
      );
    }
    if (err instanceof WorkflowNotFoundError) return operateWithoutWorkflow(ctx, event, action, reason, print);
    throw err;
  }
  print(`${action}: event ${eventId} is now ${state.status}${state.lastError && state.status === 'stuck' ? ` (${state.lastError})` : ''}`, state);
  return state.status === 'stuck' && action !== 'retry' ? ExitCode.failure : ExitCode.ok;
}

/** How long retry, compensate and discard wait for the workflow to carry the action out. */
const DEFAULT_OPERATE_TIMEOUT = '2m';

/** gRPC DEADLINE_EXCEEDED. */
const DEADLINE_EXCEEDED = 4;

/**
 * A stuck event whose workflow is no longer open (terminated or cancelled in the Web UI, or gone
 * after Temporal's retention): the action is taken in the store. `retry` makes it pending again, and
 * the relay's sweeper starts a new workflow for it; `discard` discards it with the reason;
 * `compensate` needs the worker's registered compensation, which only a workflow runs: refused.
 */
async function operateWithoutWorkflow(
  ctx: Context,
  event: OutboxEvent,
  action: 'retry' | 'compensate' | 'discard',
  reason: string | undefined,
  print: Print,
): Promise<ExitCode> {
  const eventId = event.id;
  if (action === 'compensate') {
    throw new CliError(`event ${eventId} has no open workflow to run its compensation: retry it (a new workflow takes it up) or discard it`, ExitCode.refused);
  }
  const store = await ctx.store();
  const changed =
    action === 'retry'
      ? await store.transition(eventId, { from: 'stuck', to: 'pending' })
      : await store.transition(eventId, { from: 'stuck', to: 'discarded', resolution: { status: 'discarded', reason: reason ?? null, at: new Date() } });
  const now = await store.get(eventId);
  if (!changed) throw new CliError(`event ${eventId} is ${now?.status ?? 'gone'}: ${action} applies only to a stuck event`, ExitCode.refused);
  const status = now?.status ?? (action === 'retry' ? 'pending' : 'discarded');
  const note = action === 'retry' ? ' (its workflow had closed: the relay\'s sweeper starts a new one)' : ' (its workflow had closed: done in the store)';
  print(`${action}: event ${eventId} is now ${status}${note}`, { eventId, status, workflow: 'closed' });
  return ExitCode.ok;
}

export async function replay(ctx: Context, eventId: string | undefined, values: Values, io: Io, print: Print): Promise<ExitCode> {
  let events: OutboxEvent[];
  if (eventId !== undefined) {
    const event = await (await ctx.store()).get(eventId);
    if (event === null) throw new CliError(`event ${eventId} is not in the outbox store`, ExitCode.notFound);
    events = [event];
  } else {
    const from = parseTime('--from', values.from);
    const to = parseTime('--to', values.to);
    const store = await ctx.store();
    events = await listAll((query) => store.list(query), { status: 'published', afterId: minEventIdAt(from.getTime() - 1), beforeId: minEventIdAt(to.getTime()) });
  }
  const notPublished = events.filter((e) => e.status !== 'published');
  if (notPublished.length > 0) {
    throw new CliError(`replay applies only to published events; ${notPublished.map((e) => `${e.id} is ${e.status}`).join(', ')}`, ExitCode.refused);
  }
  if (events.length === 0) {
    print('no published events in that range', { replayed: [] });
    return ExitCode.ok;
  }
  await confirmOrRefuse(io, values, `publish ${events.length} event(s) to Kafka again, with the same event ids?`);
  const stamp = Date.now().toString(36);
  const replayed: Array<{ eventId: string; workflowId: string }> = [];
  for (const event of events) {
    const workflowId = `${eventWorkflowId(event.id, ctx.config.workflowIdPrefix)}-replay-${stamp}`;
    const input: PublishEventInput = { eventId: event.id, policy: ctx.config.publishPolicy, replay: true };
    await (await ctx.client()).workflow.start('publishEventWorkflow', { taskQueue: ctx.config.taskQueue, workflowId, args: [input], memo: { replayOf: event.id } });
    replayed.push({ eventId: event.id, workflowId });
  }
  print(replayed.map((r) => `replay started: ${r.workflowId}`).join('\n'), { replayed });
  return ExitCode.ok;
}
