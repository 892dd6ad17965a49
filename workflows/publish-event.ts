import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  log,
  patched,
  setHandler,
  sleep,
  TimeoutFailure,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { Patches, type Patch } from './patches';
import { cannotPass, eventActivities } from './publish-activities';
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

/**
 * One event, one workflow (id `outbox-<eventId>`). Publish under the given retry policy; when the
 * retries are exhausted or the failure can never pass, escalate: the event becomes `stuck` (store and
 * `OutboxStatus`), a copy goes to the dead-letter topic if one is set, and the workflow waits, as long
 * as it takes, for an operator: `retry` (a fresh attempt budget), `compensate` (the compensation
 * registered for the event's type), or `discard` (with a reason).
 */
export async function publishEventWorkflow(input: PublishEventInput): Promise<PublishEventOutcome> {
  const run = new EventRun(input);
  for (;;) {
    // Published; or escalated and settled another way; or stuck until an operator acts (a retry goes round again).
    const outcome = (await run.publish()) ?? (await run.escalate()) ?? (await run.awaitOperator());
    if (outcome !== undefined) return outcome;
  }
}

/** One run of an event's workflow: its state, the operator's requests, and the steps that act on them. */
class EventRun {
  private readonly eventId: string;
  private readonly activities: ReturnType<typeof eventActivities>;
  private readonly state: EventWorkflowState;
  private action: OperatorAction | undefined;
  private handled = 0;
  // Runs that began before it replay without it: an attempt that timed out is waited out before the
  // store is asked, and every change of the event's status acts on what the store answered.
  private readonly waitsOut: boolean;
  // Runs that began before it replay without it: every attempt is an activity.
  private readonly firstAttemptLocal: boolean;
  // Runs that began before it replay without it: they asked each patch on its own.
  private readonly folded: boolean;

  constructor(private readonly input: PublishEventInput) {
    this.eventId = input.eventId;
    this.activities = eventActivities(input.policy);
    this.state = { eventId: input.eventId, status: 'pending', attempts: 0, retryRounds: 0, lastError: null, resolutionReason: null };
    this.setSignalHandlers();
    this.setUpdateHandlers();
    this.folded = patched(Patches.publishPatchesFolded);
    this.waitsOut = this.holds(Patches.publishWaitsOutLateAcknowledgements);
    // With one attempt only, it stays the activity: a local attempt cannot heartbeat, so one that
    // timed out would be waited out for a conservative window before the event escalates.
    this.firstAttemptLocal =
      input.policy.localActivity !== true && input.policy.firstAttemptLocal !== false && input.policy.maximumAttempts !== 1 && this.holds(Patches.publishFirstAttemptLocal);
  }

  /** Whether an earlier patch holds for this run: all do under `publishPatchesFolded`, which asks none of them. */
  private holds(patch: Patch): boolean {
    return this.folded || patched(patch);
  }

  private refusal(what: string): string | undefined {
    if (this.state.status !== 'stuck') return `event ${this.eventId} is ${this.state.status}: ${what} applies only to a stuck event`;
    if (this.action !== undefined) return `event ${this.eventId} is already being handled (${this.action.kind})`;
    return undefined;
  }

  private request(next: OperatorAction): void {
    const refused = this.refusal(next.kind);
    if (refused) {
      log.warn('operator action ignored', { eventId: this.eventId, action: next.kind, reason: refused });
      return;
    }
    this.action = next;
  }

  /** Resolves once the action the update asked for has been carried out. */
  private async carriedOut(): Promise<EventWorkflowState> {
    const before = this.handled;
    await condition(() => this.handled > before);
    return this.state;
  }

  /** The state query and the operator's signals (the Web UI sends these; one that does not fit is ignored and logged). */
  private setSignalHandlers(): void {
    setHandler(stateQuery, () => this.state);
    setHandler(retrySignal, () => this.request({ kind: 'retry' }));
    setHandler(compensateSignal, (req) => this.request({ kind: 'compensate', reason: req?.reason ?? null }));
    setHandler(discardSignal, (req) => {
      if (typeof req?.reason !== 'string' || req.reason.trim() === '') {
        log.warn('discard ignored: a reason is required', { eventId: this.eventId });
        return;
      }
      this.request({ kind: 'discard', reason: req.reason });
    });
  }

  /** The operator's updates (the CLI sends these): refused by their validators, answered once carried out. */
  private setUpdateHandlers(): void {
    setHandler(
      retryUpdate,
      async () => {
        this.request({ kind: 'retry' });
        return this.carriedOut();
      },
      { validator: () => throwIf(this.refusal('retry')) },
    );
    setHandler(
      compensateUpdate,
      async (req) => {
        this.request({ kind: 'compensate', reason: req?.reason ?? null });
        return this.carriedOut();
      },
      { validator: (_req: CompensateRequest) => throwIf(this.refusal('compensate')) },
    );
    setHandler(
      discardUpdate,
      async (req) => {
        this.request({ kind: 'discard', reason: req.reason });
        return this.carriedOut();
      },
      {
        validator: (req) => {
          if (typeof req?.reason !== 'string' || req.reason.trim() === '') throw new Error('discard needs a reason (--reason "...")');
          throwIf(this.refusal('discard'));
        },
      },
    );
  }

  private setStatus(status: EventWorkflowState['status']): void {
    this.state.status = status;
    upsertSearchAttributes([{ key: OutboxSearchAttributes.status, value: status }]);
  }

  private published(receipt: PublishReceipt): PublishEventOutcome {
    this.state.attempts = Math.max(this.state.attempts, receipt.attempts);
    this.state.lastError = null;
    this.setStatus('published');
    log.info('event published', { eventId: this.eventId, topic: receipt.topic, partition: receipt.partition, offset: receipt.offset, alreadyPublished: receipt.alreadyPublished });
    return { status: 'published', receipt };
  }

  /** The outcome the store's status stands for, when it is no longer the one the workflow expected. */
  private async settledAs(status: string | undefined): Promise<PublishEventOutcome | undefined> {
    if (status === 'published') {
      const receipt = await this.activities.publishedReceipt(this.eventId, null);
      return receipt === null ? undefined : this.published(receipt);
    }
    if (status === 'compensated' || status === 'discarded') {
      this.setStatus(status);
      return { status, eventId: this.eventId, reason: this.state.resolutionReason };
    }
    return undefined;
  }

  /** The action was carried out (or ended): the next one may come, and the update waiting on it returns. */
  private actionDone(): void {
    this.action = undefined;
    this.handled += 1;
  }

  /**
   * The operator's action is not carried out when the store says the event is published: the
   * workflow completes as published (after the operator's update has returned).
   */
  private async publishedInstead(kind: OperatorAction['kind']): Promise<PublishEventOutcome | undefined> {
    const receipt = await this.activities.publishedReceipt(this.eventId, null);
    if (receipt === null) return undefined;
    const outcome = this.published(receipt);
    this.actionDone();
    log.info(`${kind} not carried out: the store says the event is published`, { eventId: this.eventId });
    await condition(allHandlersFinished); // let the operator's update return before the workflow closes
    return outcome;
  }

  /** Publishes under the retry policy; undefined when the attempts are spent or the failure can never pass. */
  async publish(): Promise<PublishEventOutcome | undefined> {
    const { eventId, input } = this;
    try {
      return this.published(await this.attempts());
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      if (err.cause instanceof ApplicationFailure && err.cause.type === 'EVENT_NOT_FOUND') throw err;
      this.state.lastError = failureText(err);
      // An attempt that timed out may have a send on its way: its acknowledgement, recorded by that
      // attempt, can come until the time its heartbeat named. Nothing is decided before then.
      if (this.waitsOut) await waitOutLateAcknowledgements(err, input.policy.startToCloseTimeoutMs);
      if (this.holds(Patches.escalationChecksStore)) {
        // In Kafka but not recorded (the store failed after the acknowledgement), or published by a
        // late acknowledgement of an attempt that timed out: recorded, and never escalated.
        const cause = err.cause instanceof ApplicationFailure ? err.cause : undefined;
        const sent = cause?.type === 'PUBLISHED_NOT_RECORDED' ? ((cause.details?.[0] as PublishReceipt | undefined) ?? null) : null;
        const receipt = await this.activities.publishedReceipt(eventId, sent);
        if (receipt !== null) return this.published(receipt);
      }
      return undefined;
    }
  }

  /**
   * The publish attempts under the policy: one activity; or, behind its patch, the first attempt as
   * a local activity and, if it fails in a way a later attempt may pass, the others as an activity
   * after the policy's first wait. A failing event shows its attempts, its last failure and its
   * pending activity in the Web UI as before; a published one costs no activity task.
   */
  private async attempts(): Promise<PublishReceipt> {
    const { eventId, input, activities } = this;
    const replay = input.replay === true;
    // Published and recorded by its key's run: this workflow is its record.
    if (this.folded && input.recorded !== undefined && !replay) return input.recorded;
    if (!this.firstAttemptLocal) return activities.publishEvent(eventId, { replay });
    try {
      return await activities.publishFirst(eventId, { replay });
    } catch (err) {
      if (!(err instanceof ActivityFailure) || cannotPass(err)) throw err;
      this.state.lastError = failureText(err);
    }
    await sleep(input.policy.initialIntervalMs);
    return activities.publishRest(eventId, { replay, priorAttempts: 1 });
  }

  /** Escalation, if the store still says pending (it may have been settled another way meanwhile): stuck, and its dead-letter copy. */
  async escalate(): Promise<PublishEventOutcome | undefined> {
    const { eventId, state } = this;
    const escalated = await this.activities.escalateEvent(eventId, state.lastError ?? 'unknown error');
    state.attempts = escalated.attempts;
    if (this.waitsOut && escalated.status !== undefined && escalated.status !== 'stuck') {
      const outcome = await this.settledAs(escalated.status);
      if (outcome !== undefined) return outcome;
    }
    this.setStatus('stuck');
    log.warn('event stuck: waiting for an operator (retry, compensate or discard)', { eventId, attempts: state.attempts, lastError: state.lastError });
    const { deadLetterTopic } = this.input.policy;
    if (deadLetterTopic) await this.copyToDeadLetters(deadLetterTopic);
    return undefined;
  }

  private async copyToDeadLetters(topic: string): Promise<void> {
    const { eventId, state } = this;
    if (this.holds(Patches.operatorStepsBounded)) {
      // A dead-letter topic that is missing or down must not keep the operator waiting.
      const cause = state.lastError ?? '';
      await this.activities.bounded.publishDeadLetter(eventId, topic, cause).catch((err: unknown) => {
        state.lastError = `${cause}; the dead-letter copy failed: ${failureText(err)}`;
        log.error('dead-letter copy failed; the event waits for an operator all the same', { eventId, error: state.lastError });
      });
    } else {
      await this.activities.publishDeadLetter(eventId, topic, state.lastError ?? '');
    }
  }

  /** Waits for an operator; a compensation that fails leaves the event stuck and waiting again. Undefined: retried, publish again. */
  async awaitOperator(): Promise<PublishEventOutcome | undefined> {
    for (;;) {
      await condition(() => this.action !== undefined);
      const next = this.action as OperatorAction;
      if (next.kind !== 'retry' && this.holds(Patches.escalationChecksStore)) {
        // A late acknowledgement may have published it meanwhile: then nothing is undone or dropped.
        const outcome = await this.publishedInstead(next.kind);
        if (outcome !== undefined) return outcome;
      }
      if (next.kind === 'retry') return this.retry();
      if (next.kind === 'compensate' && !(await this.compensate())) continue;
      return this.resolve(next);
    }
  }

  private async retry(): Promise<PublishEventOutcome | undefined> {
    const reopened = await this.activities.reopenEvent(this.eventId);
    if (this.waitsOut && reopened === false) {
      // The store no longer says stuck: published meanwhile, the event completes as published.
      const outcome = await this.publishedInstead('retry');
      if (outcome !== undefined) return outcome;
    }
    this.state.retryRounds += 1;
    this.setStatus('pending');
    this.actionDone();
    return undefined;
  }

  /** Runs the compensation; false (the event stays stuck) when it failed. */
  private async compensate(): Promise<boolean> {
    try {
      await (this.holds(Patches.operatorStepsBounded) ? this.activities.bounded.compensateEvent : this.activities.compensateEvent)(this.eventId);
      return true;
    } catch (err) {
      this.state.lastError = `compensation failed: ${failureText(err)}`;
      log.error('compensation failed; the event stays stuck', { eventId: this.eventId, error: this.state.lastError });
      this.actionDone();
      return false;
    }
  }

  private async resolve(next: Exclude<OperatorAction, { kind: 'retry' }>): Promise<PublishEventOutcome> {
    const { eventId } = this;
    const status = next.kind === 'compensate' ? 'compensated' : 'discarded';
    const resolved = await this.activities.resolveEvent(eventId, status, next.reason);
    if (this.waitsOut && resolved === false) {
      // Published between the store check and now: the store's record stands.
      const outcome = await this.publishedInstead(next.kind);
      if (outcome !== undefined) return outcome;
    }
    this.state.resolutionReason = next.reason;
    this.setStatus(status);
    this.actionDone();
    log.info(`event ${status} by an operator`, { eventId, reason: next.reason });
    await condition(allHandlersFinished); // let the operator's update return before the workflow closes
    return { status, eventId, reason: next.reason };
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
