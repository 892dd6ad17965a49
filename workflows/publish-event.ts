import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  TimeoutFailure,
  upsertSearchAttributes,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { OutboxActivities } from '../activities';
import { Patches } from './patches';
import { OutboxSearchAttributes } from './search-attributes';
import {
  compensateSignal,
  compensateUpdate,
  discardSignal,
  discardUpdate,
  retrySignal,
  retryUpdate,
  stateQuery,
  type CompensateRequest,
  type EventWorkflowState,
} from './signals';
import type { PublishEventInput, PublishEventOutcome, PublishHeartbeat, PublishReceipt } from './types';

type OperatorAction = { kind: 'retry' } | { kind: 'compensate'; reason: string | null } | { kind: 'discard'; reason: string };

/** Store bookkeeping and compensation: short, retried until they pass (the store comes back). */
const BOOKKEEPING: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', nonRetryableErrorTypes: ['EVENT_NOT_FOUND', 'NO_COMPENSATION'] },
};

/**
 * The dead-letter copy and the compensation, when an operator loop must go on whatever they do: five
 * attempts within about a minute and a half (30 s each at most, backoff 1 s to 10 s), then the event
 * stays stuck, waiting for the next action, with the failure in `lastError`.
 */
export const OPERATOR_STEP: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5, nonRetryableErrorTypes: ['EVENT_NOT_FOUND', 'NO_COMPENSATION'] },
};

/**
 * One event, one workflow (id `outbox-<eventId>`). Publish under the given retry policy; when the
 * retries are exhausted or the failure can never pass, escalate: the event becomes `stuck` (store and
 * `OutboxStatus`), a copy goes to the dead-letter topic if one is set, and the workflow waits, as long
 * as it takes, for an operator: `retry` (a fresh attempt budget), `compensate` (the compensation
 * registered for the event's type), or `discard` (with a reason).
 */
export async function publishEventWorkflow(input: PublishEventInput): Promise<PublishEventOutcome> {
  const { policy, eventId } = input;
  const publishOptions = {
    startToCloseTimeout: policy.startToCloseTimeoutMs,
    retry: {
      initialInterval: policy.initialIntervalMs,
      backoffCoefficient: policy.backoffCoefficient,
      maximumInterval: policy.maximumIntervalMs,
      // 0 means no limit, which the SDK expresses by leaving the field out.
      ...(policy.maximumAttempts > 0 ? { maximumAttempts: policy.maximumAttempts } : {}),
      nonRetryableErrorTypes: ['EVENT_NOT_FOUND'],
    },
  };
  const { publishEvent } = policy.localActivity
    ? proxyLocalActivities<OutboxActivities>(publishOptions)
    : proxyActivities<OutboxActivities>(publishOptions);
  const { escalateEvent, reopenEvent, resolveEvent, compensateEvent, publishDeadLetter, publishedReceipt } = proxyActivities<OutboxActivities>(BOOKKEEPING);
  const bounded = proxyActivities<OutboxActivities>(OPERATOR_STEP);

  const state: EventWorkflowState = { eventId, status: 'pending', attempts: 0, retryRounds: 0, lastError: null, resolutionReason: null };
  let action: OperatorAction | undefined;
  let handled = 0;

  const refusal = (what: string): string | undefined => {
    if (state.status !== 'stuck') return `event ${eventId} is ${state.status}: ${what} applies only to a stuck event`;
    if (action !== undefined) return `event ${eventId} is already being handled (${action.kind})`;
    return undefined;
  };
  const request = (next: OperatorAction): void => {
    const refused = refusal(next.kind);
    if (refused) {
      log.warn('operator action ignored', { eventId, action: next.kind, reason: refused });
      return;
    }
    action = next;
  };
  // Resolves once the action the update asked for has been carried out.
  const carriedOut = async (): Promise<EventWorkflowState> => {
    const before = handled;
    await condition(() => handled > before);
    return state;
  };

  setHandler(stateQuery, () => state);
  setHandler(retrySignal, () => request({ kind: 'retry' }));
  setHandler(compensateSignal, (req) => request({ kind: 'compensate', reason: req?.reason ?? null }));
  setHandler(discardSignal, (req) => {
    if (typeof req?.reason !== 'string' || req.reason.trim() === '') {
      log.warn('discard ignored: a reason is required', { eventId });
      return;
    }
    request({ kind: 'discard', reason: req.reason });
  });
  setHandler(
    retryUpdate,
    async () => {
      request({ kind: 'retry' });
      return carriedOut();
    },
    { validator: () => throwIf(refusal('retry')) },
  );
  setHandler(
    compensateUpdate,
    async (req) => {
      request({ kind: 'compensate', reason: req?.reason ?? null });
      return carriedOut();
    },
    { validator: (_req: CompensateRequest) => throwIf(refusal('compensate')) },
  );
  setHandler(
    discardUpdate,
    async (req) => {
      request({ kind: 'discard', reason: req.reason });
      return carriedOut();
    },
    {
      validator: (req) => {
        if (typeof req?.reason !== 'string' || req.reason.trim() === '') throw new Error('discard needs a reason (--reason "...")');
        throwIf(refusal('discard'));
      },
    },
  );

  const setStatus = (status: EventWorkflowState['status']): void => {
    state.status = status;
    upsertSearchAttributes([{ key: OutboxSearchAttributes.status, value: status }]);
  };

  const published = (receipt: PublishReceipt): PublishEventOutcome => {
    state.attempts = Math.max(state.attempts, receipt.attempts);
    state.lastError = null;
    setStatus('published');
    log.info('event published', { eventId, topic: receipt.topic, partition: receipt.partition, offset: receipt.offset, alreadyPublished: receipt.alreadyPublished });
    return { status: 'published', receipt };
  };

  // Runs that began before it replay without it: an attempt that timed out is waited out before the
  // store is asked, and every change of the event's status acts on what the store answered.
  const waitsOut = patched(Patches.publishWaitsOutLateAcknowledgements);
  /** The outcome the store's status stands for, when it is no longer the one the workflow expected. */
  const settledAs = async (status: string | undefined): Promise<PublishEventOutcome | undefined> => {
    if (status === 'published') {
      const receipt = await publishedReceipt(eventId, null);
      return receipt === null ? undefined : published(receipt);
    }
    if (status === 'compensated' || status === 'discarded') {
      setStatus(status);
      return { status, eventId, reason: state.resolutionReason };
    }
    return undefined;
  };

  /**
   * The operator's action is not carried out when the store says the event is published: the
   * workflow completes as published (after the operator's update has returned).
   */
  const publishedInstead = async (kind: OperatorAction['kind']): Promise<PublishEventOutcome | undefined> => {
    const receipt = await publishedReceipt(eventId, null);
    if (receipt === null) return undefined;
    const outcome = published(receipt);
    action = undefined;
    handled += 1;
    log.info(`${kind} not carried out: the store says the event is published`, { eventId });
    await condition(allHandlersFinished); // let the operator's update return before the workflow closes
    return outcome;
  };

  for (;;) {
    try {
      return published(await publishEvent(eventId, { replay: input.replay === true }));
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      if (err.cause instanceof ApplicationFailure && err.cause.type === 'EVENT_NOT_FOUND') throw err;
      state.lastError = failureText(err);
      // An attempt that timed out may have a send on its way: its acknowledgement, recorded by that
      // attempt, can come until the time its heartbeat named. Nothing is decided before then.
      if (waitsOut) await waitOutLateAcknowledgements(err, policy.startToCloseTimeoutMs);
      if (patched(Patches.escalationChecksStore)) {
        // In Kafka but not recorded (the store failed after the acknowledgement), or published by a
        // late acknowledgement of an attempt that timed out: recorded, and never escalated.
        const cause = err.cause instanceof ApplicationFailure ? err.cause : undefined;
        const sent = cause?.type === 'PUBLISHED_NOT_RECORDED' ? ((cause.details?.[0] as PublishReceipt | undefined) ?? null) : null;
        const receipt = await publishedReceipt(eventId, sent);
        if (receipt !== null) return published(receipt);
      }
    }

    // Escalation, if the store still says pending (it may have been settled another way meanwhile).
    const escalated = await escalateEvent(eventId, state.lastError ?? 'unknown error');
    state.attempts = escalated.attempts;
    if (waitsOut && escalated.status !== undefined && escalated.status !== 'stuck') {
      const outcome = await settledAs(escalated.status);
      if (outcome !== undefined) return outcome;
    }
    setStatus('stuck');
    log.warn('event stuck: waiting for an operator (retry, compensate or discard)', { eventId, attempts: state.attempts, lastError: state.lastError });
    if (policy.deadLetterTopic) {
      if (patched(Patches.operatorStepsBounded)) {
        // A dead-letter topic that is missing or down must not keep the operator waiting.
        const cause = state.lastError ?? '';
        await bounded.publishDeadLetter(eventId, policy.deadLetterTopic, cause).catch((err: unknown) => {
          state.lastError = `${cause}; the dead-letter copy failed: ${failureText(err)}`;
          log.error('dead-letter copy failed; the event waits for an operator all the same', { eventId, error: state.lastError });
        });
      } else {
        await publishDeadLetter(eventId, policy.deadLetterTopic, state.lastError ?? '');
      }
    }

    // Wait for an operator; a compensation that fails leaves the event stuck and waiting again.
    for (;;) {
      await condition(() => action !== undefined);
      const next = action as OperatorAction;
      if (next.kind !== 'retry' && patched(Patches.escalationChecksStore)) {
        // A late acknowledgement may have published it meanwhile: then nothing is undone or dropped.
        const outcome = await publishedInstead(next.kind);
        if (outcome !== undefined) return outcome;
      }
      if (next.kind === 'retry') {
        const reopened = await reopenEvent(eventId);
        if (waitsOut && reopened === false) {
          // The store no longer says stuck: published meanwhile, the event completes as published.
          const outcome = await publishedInstead(next.kind);
          if (outcome !== undefined) return outcome;
        }
        state.retryRounds += 1;
        setStatus('pending');
        action = undefined;
        handled += 1;
        break;
      }
      if (next.kind === 'compensate') {
        try {
          await (patched(Patches.operatorStepsBounded) ? bounded.compensateEvent : compensateEvent)(eventId);
        } catch (err) {
          state.lastError = `compensation failed: ${failureText(err)}`;
          log.error('compensation failed; the event stays stuck', { eventId, error: state.lastError });
          action = undefined;
          handled += 1;
          continue;
        }
      }
      const status = next.kind === 'compensate' ? 'compensated' : 'discarded';
      const resolved = await resolveEvent(eventId, status, next.reason);
      if (waitsOut && resolved === false) {
        // Published between the store check and now: the store's record stands.
        const outcome = await publishedInstead(next.kind);
        if (outcome !== undefined) return outcome;
      }
      state.resolutionReason = next.reason;
      setStatus(status);
      action = undefined;
      handled += 1;
      log.info(`event ${status} by an operator`, { eventId, reason: next.reason });
      await condition(allHandlersFinished); // let the operator's update return before the workflow closes
      return { status, eventId, reason: next.reason };
    }
  }
}

/** When nothing says how long a timed-out attempt's send may stay on its way (a local activity, an older worker). */
const UNKNOWN_SEND_WINDOW_MS = 60_000;

/**
 * After a publish attempt that timed out (its worker still sending, or gone): sleeps until the time
 * its heartbeat named as the latest an acknowledgement of its send could come (PublishHeartbeat);
 * without one, one start-to-close and a minute. Other failures ended their send: no wait.
 */
async function waitOutLateAcknowledgements(err: ActivityFailure, startToCloseTimeoutMs: number): Promise<void> {
  if (!(err.cause instanceof TimeoutFailure)) return;
  const details = err.cause.lastHeartbeatDetails as Partial<PublishHeartbeat> | undefined;
  const until = typeof details?.inFlightUntil === 'number' ? details.inFlightUntil : Date.now() + startToCloseTimeoutMs + UNKNOWN_SEND_WINDOW_MS;
  if (until > Date.now()) {
    log.warn('publish attempt timed out with a send possibly on its way: waiting until it can no longer be acknowledged', { waitMs: until - Date.now() });
    await sleep(until - Date.now());
  }
}

function throwIf(message: string | undefined): void {
  if (message !== undefined) throw new Error(message);
}

function failureText(err: unknown): string {
  let current: unknown = err;
  // The innermost cause says what really failed (ActivityFailure wraps the activity's own error).
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}
