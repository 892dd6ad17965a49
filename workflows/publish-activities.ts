// The activities an event's publish workflow runs, and their options: its publish attempts
// (activities or local activities), its bookkeeping and its bounded operator steps.
import { ActivityFailure, ApplicationFailure, proxyActivities, proxyLocalActivities, TemporalFailure, type ActivityOptions } from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import type { OutboxActivities } from '../activities';
import type { PublishEventInput } from './types';

/** Store bookkeeping and compensation: short, retried until they pass (the store comes back). */
export const BOOKKEEPING: ActivityOptions = {
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

/** The activities of one event's workflow: its publish attempts (activities or local activities), its bookkeeping, its bounded operator steps. */
export function eventActivities(policy: PublishEventInput['policy']) {
  const retry = (initialIntervalMs: number, maximumAttempts: number) => ({
    initialInterval: initialIntervalMs,
    backoffCoefficient: policy.backoffCoefficient,
    maximumInterval: policy.maximumIntervalMs,
    // 0 means no limit, which the SDK expresses by leaving the field out.
    ...(maximumAttempts > 0 ? { maximumAttempts } : {}),
    nonRetryableErrorTypes: NON_RETRYABLE_PUBLISH,
  });
  const publishOptions = { startToCloseTimeout: policy.startToCloseTimeoutMs, retry: retry(policy.initialIntervalMs, policy.maximumAttempts) };
  const publishEvent = policy.localActivity ? wrappedLocal(proxyLocalActivities<OutboxActivities>(publishOptions).publishEvent) : proxyActivities<OutboxActivities>(publishOptions).publishEvent;
  // The first attempt as a local activity (no activity task, no activity events in the history), and
  // the rest as an activity whose waits go on where the first one's left off: the same attempts, at
  // the same times, as one activity under the policy.
  const publishFirst = wrappedLocal(proxyLocalActivities<OutboxActivities>({ startToCloseTimeout: policy.startToCloseTimeoutMs, retry: { maximumAttempts: 1 } }).publishEvent);
  const { publishEvent: publishRest } = proxyActivities<OutboxActivities>({
    startToCloseTimeout: policy.startToCloseTimeoutMs,
    retry: retry(Math.min(policy.initialIntervalMs * policy.backoffCoefficient, policy.maximumIntervalMs), policy.maximumAttempts > 0 ? policy.maximumAttempts - 1 : 0),
  });
  // Named one by one: an activity proxy has no keys of its own to spread.
  const { escalateEvent, reopenEvent, resolveEvent, compensateEvent, publishDeadLetter, publishedReceipt } = proxyActivities<OutboxActivities>(BOOKKEEPING);
  const bounded = proxyActivities<OutboxActivities>(OPERATOR_STEP);
  return { publishEvent, publishFirst, publishRest, escalateEvent, reopenEvent, resolveEvent, compensateEvent, publishDeadLetter, publishedReceipt, bounded };
}

/**
 * A local activity whose attempts are spent fails with its cause alone (the SDK wraps an activity's
 * failure in ActivityFailure, not a local activity's): wrapped the same way, so the workflow handles
 * both alike, and escalates rather than fails.
 */
export function wrappedLocal(local: OutboxActivities['publishEvent']): OutboxActivities['publishEvent'] {
  return async (...args) => {
    try {
      return await local(...args);
    } catch (err) {
      if (err instanceof ActivityFailure || !(err instanceof TemporalFailure)) throw err;
      throw new ActivityFailure(`local activity publishEvent failed: ${err.message}`, 'publishEvent', undefined, RetryState.RETRY_STATE_UNSPECIFIED, undefined, err);
    }
  };
}

/** Failures of a publish attempt that no later attempt can pass. */
export const NON_RETRYABLE_PUBLISH = ['EVENT_NOT_FOUND'];

/** A failed attempt that no later attempt can pass: non-retryable, or of a type the policy never retries. */
export function cannotPass(err: ActivityFailure): boolean {
  const cause = err.cause;
  return cause instanceof ApplicationFailure && (cause.nonRetryable || NON_RETRYABLE_PUBLISH.includes(cause.type ?? ''));
}
