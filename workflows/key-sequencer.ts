import {
  ChildWorkflowFailure,
  condition,
  continueAsNew,
  executeChild,
  log,
  startChild,
  ParentClosePolicy,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  upsertMemo,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { TemporalFailure, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { OutboxActivities, RunResult } from '../activities';
import { publishEventWorkflow } from './publish-event';
import { Patches, type Patch } from './patches';
import { OutboxSearchAttributes } from './search-attributes';
import { enqueueSignal, sequencerQuery, type EnqueuedEvent, type SequencerState } from './signals';
import { DEFAULT_SEQUENCER_BUFFER_LIMIT, DEFAULT_SEQUENCER_RUN_LIMIT, SEQUENCER_RUN_TIMEOUT_MS, type PublishEventInput, type PublishPolicy, type PublishReceipt } from './types';

export interface KeySequencerInput {
  topic: string;
  key: string;
  policy: PublishPolicy;
  /** Prefix of the events' workflow ids, the relay's. @default "outbox-" */
  workflowIdPrefix?: string;
  /**
   * History events a sequencer may gather while it holds one event (signals keep arriving) before it
   * continues as new. @default 1000 (a test sets a small one)
   */
  holdingHistoryLimit?: number;
  /** Most events a sequencer keeps buffered behind the one it holds. @default 500 */
  bufferLimit?: number;
  /** How often it asks the store about a sequence it waits for, at first, in ms. @default 30000 (a test sets a small one) */
  recheckMs?: number;
  /**
   * Most events of the key published as one run (sequencerPublishesRuns). 1: every event goes through
   * its own workflow, one at a time, as before runs (TXOUTBOX_SEQUENCER_RUN_LIMIT). @default 100
   */
  runLimit?: number;
  /** Carried over by continue-as-new. */
  buffered?: EnqueuedEvent[];
  next?: number | null;
}

/** How long an idle sequencer waits for its key's next event before it closes (a new signal restarts it). */
const IDLE_MS = 10 * 60_000;
/** History length at which a waiting sequencer continues as new (signals keep arriving while it waits). */
const WAITING_HISTORY_LIMIT = 2_000;
/** How often a sequencer waiting for a missing sequence asks the store whether it was settled elsewhere. */
const RECHECK_MS = 30_000;
/** Longest wait between two questions to the store while a held event's publish workflow runs. */
const MAX_RECHECK_MS = 10 * 60_000;
/** Wait before starting again a publish workflow that closed without settling its event. */
const RESTART_CLOSED_MS = 5_000;
const DEFAULT_HOLDING_HISTORY_LIMIT = 1_000;


/**
 * Per-key ordering: one sequencer per topic and key (workflow id `outbox-key-<topic>/<key>`), fed by
 * the relay with signal-with-start. It runs the events' own publish workflows (`outbox-<eventId>`,
 * as children) one at a time in sequence order — the order the store assigned inside the write
 * transactions, i.e. commit order. A stuck event holds back the later events of its key until an
 * operator retries, compensates or discards it; other keys have their own sequencers.
 */
export async function keySequencerWorkflow(input: KeySequencerInput): Promise<void> {
  const sequencer = new KeySequencer(input);
  await sequencer.start();
  for (;;) {
    const expected = await sequencer.nextToHold();
    if (expected === 'close') return;
    if (expected !== 'ask-again') await sequencer.holdKey(expected);
  }
}

/** One run of a key's sequencer: what it has buffered, the sequence it expects, and the steps that move it on. */
class KeySequencer {
  private readonly topic: string;
  private readonly key: string;
  private readonly policy: PublishPolicy;
  private readonly workflowIdPrefix: string;
  private readonly activities = proxyActivities<OutboxActivities>({
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
  });
  // One try: what a run does not publish goes one event at a time, under each event's own retries.
  // Its claim shuts every other publisher out until its send has ended, however long this waits.
  private readonly runActivities = proxyLocalActivities<OutboxActivities>({ startToCloseTimeout: SEQUENCER_RUN_TIMEOUT_MS, retry: { maximumAttempts: 1 } });
  private readonly buffer: Map<number, EnqueuedEvent>;
  private next: number | null;
  private holding: EnqueuedEvent | null = null;
  /** The sequence the store was last asked about while waiting for it. */
  private askedFor: number | null = null;
  private readonly bufferLimit: number;
  private readonly holdingHistoryLimit: number;
  private readonly recheckMs: number;
  private readonly runLimit: number;
  // Runs that began before the bound replay without it (a dropped event would change their commands).
  private readonly bounded: boolean;
  // Runs that began before it replay without it: buffered events the store has settled are dropped,
  // and a held event is looked up in the store while its workflow runs or runs elsewhere.
  private readonly rechecks: boolean;
  // Runs that began before it replay without it: every event is held through its own workflow.
  private readonly runs: boolean;
  // Runs that began before it replay without it: they asked each patch on its own.
  private readonly folded: boolean;

  constructor(private readonly input: KeySequencerInput) {
    this.topic = input.topic;
    this.key = input.key;
    this.policy = input.policy;
    this.workflowIdPrefix = input.workflowIdPrefix ?? 'outbox-';
    this.buffer = new Map<number, EnqueuedEvent>((input.buffered ?? []).map((e) => [e.sequence, e]));
    this.next = input.next ?? null;
    this.bufferLimit = input.bufferLimit ?? DEFAULT_SEQUENCER_BUFFER_LIMIT;
    this.holdingHistoryLimit = input.holdingHistoryLimit ?? DEFAULT_HOLDING_HISTORY_LIMIT;
    this.recheckMs = input.recheckMs ?? RECHECK_MS;
    this.runLimit = input.runLimit ?? DEFAULT_SEQUENCER_RUN_LIMIT;
    this.folded = patched(Patches.sequencerPatchesFolded);
    this.bounded = this.holds(Patches.sequencerHoldsAcrossContinueAsNew);
    this.setHandlers();
    this.rechecks = this.holds(Patches.sequencerRechecksStore);
    this.runs = this.holds(Patches.sequencerPublishesRuns);
  }

  /** Whether an earlier patch holds for this run: all do under `sequencerPatchesFolded`, which asks none of them. */
  private holds(patch: Patch): boolean {
    return this.folded || patched(patch);
  }

  /** What a continue-as-new carries over. */
  private carried(): KeySequencerInput {
    const { input, buffer } = this;
    return {
      topic: this.topic,
      key: this.key,
      policy: this.policy,
      workflowIdPrefix: this.workflowIdPrefix,
      buffered: [...buffer.values()],
      next: this.next,
      ...(input.holdingHistoryLimit !== undefined ? { holdingHistoryLimit: this.holdingHistoryLimit } : {}),
      ...(input.bufferLimit !== undefined ? { bufferLimit: this.bufferLimit } : {}),
      ...(input.recheckMs !== undefined ? { recheckMs: this.recheckMs } : {}),
      ...(input.runLimit !== undefined ? { runLimit: this.runLimit } : {}),
    };
  }

  private setHandlers(): void {
    const { buffer } = this;
    setHandler(enqueueSignal, (events) => this.enqueue(Array.isArray(events) ? events : [events]));
    setHandler(sequencerQuery, (): SequencerState => {
      const waiting = [...buffer.values()].filter((e) => e.eventId !== this.holding?.eventId).sort((a, b) => a.sequence - b.sequence);
      return {
        topic: this.topic,
        key: this.key,
        next: this.next,
        holding: this.holding?.eventId ?? null,
        waiting: waiting.map((e) => e.eventId),
        highestWaiting: waiting[waiting.length - 1]?.sequence ?? null,
        full: this.bounded && buffer.size >= this.bufferLimit,
      };
    });
  }

  /** Buffers events of the key (a repeat of one already published or settled is ignored), keeping the lowest `bufferLimit`. */
  private enqueue(events: readonly EnqueuedEvent[]): void {
    const { buffer } = this;
    for (const event of events) {
      if (this.next !== null && event.sequence < this.next) continue; // already published or settled: a repeat
      buffer.set(event.sequence, event);
    }
    if (this.bounded && buffer.size > this.bufferLimit) {
      for (const sequence of [...buffer.keys()].sort((a, b) => a - b).slice(this.bufferLimit)) buffer.delete(sequence);
    }
  }

  /** A new sequencer starts at the key's lowest open sequence in the store. */
  async start(): Promise<void> {
    if (this.next === null) this.next = await this.activities.nextOpenSequence(this.topic, this.key);
  }

  /**
   * The sequence to hold next, once its event is buffered; `ask-again` after the store was asked about
   * a missing one; `close` when idle (the next signal-with-start opens a new run).
   */
  async nextToHold(): Promise<number | 'ask-again' | 'close'> {
    const { buffer, topic, key } = this;
    if (this.next === null) {
      // Nothing open in the store: the first enqueued event starts the sequence.
      if (!(await condition(() => buffer.size > 0, IDLE_MS))) return 'close';
      this.next = Math.min(...buffer.keys());
    }
    const expected: number = this.next;
    const idle = buffer.size === 0;
    // Later events of the key while the expected one is missing: it may have been settled another way
    // (the fast path publishes a key's run when the key is clear), and the store says so at once. So
    // the store is asked before waiting (once per sequence), and an idle wait ends when any event
    // arrives, instead of after the recheck or idle timeout.
    const settledElsewhere = this.holds(Patches.sequencerWakesOnLaterEvents);
    const askFirst = settledElsewhere && !idle && !buffer.has(expected) && this.askedFor !== expected;
    const arrived = askFirst
      ? false
      : await condition(() => buffer.has(expected) || (settledElsewhere && idle && buffer.size > 0), idle ? IDLE_MS : this.recheckMs);
    if (!(settledElsewhere ? !buffer.has(expected) : !arrived)) return expected;
    if (buffer.size === 0) return 'close';
    // A long wait (a key held back) collects signals: start a fresh history before it grows large.
    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > WAITING_HISTORY_LIMIT) {
      await continueAsNew<typeof keySequencerWorkflow>(this.carried());
    }
    // Waiting for a sequence that may have been settled another way (e.g. an operator, a sweep).
    this.askedFor = expected;
    const open = await this.activities.nextOpenSequence(topic, key);
    if (open !== null && open > expected) {
      this.next = open;
      // Settled another way: kept, they would count towards a full buffer for ever.
      if (this.rechecks) for (const sequence of [...buffer.keys()]) if (sequence < open) buffer.delete(sequence);
    } else if (open === null) this.next = Math.min(...buffer.keys());
    return 'ask-again';
  }

  /**
   * Holds the key on the expected event until it is settled, then moves on to the next sequence. With
   * `sequencerPublishesRuns`, when later events of the key wait behind it, the run of them is
   * published first, and the key moves past whatever it published.
   */
  async holdKey(expected: number): Promise<void> {
    const event = this.buffer.get(expected) as EnqueuedEvent;
    this.holding = event;
    upsertMemo({ holdingEventId: event.eventId, holdingSequence: expected });
    const { published, following } = this.runs ? await this.publishRun(expected) : { published: 0, following: [] };
    // A run published moves on at once; otherwise the expected event goes through its own workflow.
    if (published === 0) {
      if (this.bounded) await this.hold(event, expected);
      else await this.holdUntilChildCloses(event, expected);
    }
    const settled = Math.max(1, published);
    for (let sequence = expected; sequence < expected + settled; sequence++) this.buffer.delete(sequence);
    this.holding = null;
    this.next = expected + settled;
    // The key's next events, read from the store after a run: those the buffer had no room for, or
    // that the relay has not sent yet, wait for no sweep.
    this.enqueue(following);
    upsertMemo({ holdingEventId: null, holdingSequence: null });
    if (workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof keySequencerWorkflow>(this.carried());
    }
  }

  /**
   * Holds the key until the event is settled: runs its publish workflow as a child and waits for it.
   * When signals arriving meanwhile have grown the history past the limit, it continues as new: the
   * child runs on (ABANDON), and the next run finds it running. A child running elsewhere (an
   * earlier run's, a sweep's) is watched through the store, and started again if it closes without
   * settling the event, so no run of the event can leave the key waiting forever. With
   * `sequencerRechecksStore`, the store is also asked while the child runs (from every 30 s to every
   * 10 minutes) and at once when its workflow already ran: an event settled another way (a late
   * acknowledgement recorded while its workflow waits for an operator, a stale re-delivery of a
   * published event) no longer holds the key.
   */
  private async hold(event: EnqueuedEvent, expected: number): Promise<void> {
    const historyAtStart = workflowInfo().historyLength;
    const grown = (): boolean => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength - historyAtStart > this.holdingHistoryLimit;
    const settledElsewhere = async (): Promise<boolean> => (await this.activities.nextOpenSequence(this.topic, this.key)) !== expected;
    for (;;) {
      let closed: 'settled' | Error | undefined;
      try {
        const child = await startChild(publishEventWorkflow, this.childOptions(event, expected, WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY));
        child.result().then(
          () => void (closed = 'settled'),
          (err: unknown) => void (closed = err instanceof Error ? err : new Error(String(err))),
        );
        if (this.rechecks) {
          for (let waitMs = this.recheckMs; closed === undefined && !grown(); waitMs = Math.min(waitMs * 2, MAX_RECHECK_MS)) {
            if (!(await condition(() => closed !== undefined || grown(), waitMs)) && (await settledElsewhere())) return;
          }
        } else {
          await condition(() => closed !== undefined || grown());
        }
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        // Running elsewhere, or already closed: its outcome is read from the store.
        if (this.rechecks && (await settledElsewhere())) return;
        await condition(grown, this.recheckMs);
      }
      if (closed === 'settled') return;
      if (closed === undefined && grown()) await continueAsNew<typeof keySequencerWorkflow>(this.carried());
      if (closed !== undefined) {
        log.warn('publish workflow of a sequenced event closed without settling it; starting it again', { eventId: event.eventId, error: closed.message });
        await sleep(RESTART_CLOSED_MS);
      }
      // Settled by another run, an operator or the CLI? Otherwise start it again (a run that closed
      // without settling it is replaced; one still running refuses the start).
      const open = await this.activities.nextOpenSequence(this.topic, this.key);
      if (open !== expected) return;
    }
  }

  /**
   * A hot key: the expected event and those buffered right behind it (at least two, at most
   * `runLimit`) are published as one run (`publishRun`: one claim, one Kafka request, one store
   * statement), then each published event's own workflow is started, which finds it published and
   * records it (its receipt, its status in the Web UI). Returns how many were published, the run's
   * first ones, and the key's open events after them in the store (up to `runLimit`), which holdKey
   * buffers once it has moved on; 0 sends the expected event through its own workflow as before (a
   * failed send, an event someone else holds, a key the store says is not clear, an older worker).
   */
  private async publishRun(expected: number): Promise<{ published: number; following: EnqueuedEvent[] }> {
    const none = { published: 0, following: [] };
    const run: EnqueuedEvent[] = [];
    for (let event = this.buffer.get(expected); event !== undefined && run.length < this.runLimit; event = this.buffer.get(expected + run.length)) run.push(event);
    if (run.length < 2) return none;
    let result: RunResult;
    try {
      result = await this.runActivities.publishRun(run.map((e) => e.eventId), this.runLimit);
    } catch (err) {
      if (!(err instanceof TemporalFailure)) throw err;
      log.warn('key run not published; its events go one at a time', { key: this.key, from: expected, events: run.length, error: err.message });
      return none;
    }
    const published = new Set(result.published);
    let count = 0;
    while (count < run.length && published.has((run[count] as EnqueuedEvent).eventId)) count += 1;
    // The run's receipts, when it recorded every one (newer workers): each workflow records its own.
    const receipts = result.receipts?.length === result.published.length ? result.receipts : undefined;
    await Promise.all(run.slice(0, count).map((event, i) => this.startRecord(event, expected + i, receipts?.[i])));
    return { published: count, following: count === 0 ? [] : result.following };
  }

  /** Starts a published event's own workflow, which records its publication; one that exists already is its record. */
  private async startRecord(event: EnqueuedEvent, sequence: number, recorded: PublishReceipt | undefined): Promise<void> {
    try {
      await startChild(publishEventWorkflow, this.childOptions(event, sequence, WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY, recorded));
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }

  /** What a sequencer did before `sequencerHoldsAcrossContinueAsNew`, kept for the runs that replay it. */
  private async holdUntilChildCloses(event: EnqueuedEvent, expected: number): Promise<void> {
    const restartClosed = this.holds(Patches.sequencerRestartsClosedChild);
    for (;;) {
      try {
        await executeChild(
          publishEventWorkflow,
          this.childOptions(event, expected, restartClosed ? WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY : WorkflowIdReusePolicy.REJECT_DUPLICATE),
        );
      } catch (err) {
        if (restartClosed && err instanceof ChildWorkflowFailure) {
          // Closed without settling its event (terminated or cancelled by an operator, failed): start
          // it again, unless the store says the event was settled meanwhile (the CLI, the fast path).
          log.warn('publish workflow of a sequenced event closed without settling it; starting it again', { eventId: event.eventId, error: err.message });
          await sleep(RESTART_CLOSED_MS);
          const open = await this.activities.nextOpenSequence(this.topic, this.key);
          if (open === expected) continue;
          break;
        }
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) {
          if (err instanceof ChildWorkflowFailure) {
            log.error('publish workflow of a sequenced event failed; waiting until the event is settled', { eventId: event.eventId, error: err.message });
          } else {
            throw err;
          }
        }
        // Started elsewhere (an earlier sequencer run, a sweep before ordering was enabled): wait for
        // the store to say it is settled, so order still holds.
        await this.activities.waitUntilSettled(event.eventId);
      }
      break;
    }
  }

  private childOptions(event: EnqueuedEvent, expected: number, workflowIdReusePolicy: WorkflowIdReusePolicy, recorded?: PublishReceipt) {
    return {
      workflowId: `${this.workflowIdPrefix}${event.eventId}`,
      args: [{ eventId: event.eventId, policy: this.policy, ...(recorded?.eventId === event.eventId ? { recorded } : {}) }] as [PublishEventInput],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowIdReusePolicy,
      typedSearchAttributes: [
        { key: OutboxSearchAttributes.status, value: 'pending' },
        { key: OutboxSearchAttributes.eventType, value: event.type },
        { key: OutboxSearchAttributes.aggregateId, value: event.aggregateId },
        { key: OutboxSearchAttributes.topic, value: this.topic },
      ],
      memo: { eventId: event.eventId, sequence: expected, key: this.key },
    };
  }
}
