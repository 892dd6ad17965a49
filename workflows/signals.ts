// Operator actions on one event's workflow, defined once for the workflow, the CLI and the tests.
// Each action exists as a signal (the Web UI and `temporal workflow signal` can send it) and as an
// update (the CLI: a validator rejects, with a message, an action that does not fit the state).
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/** What the workflow reports about its event. */
export interface EventWorkflowState {
  eventId: string;
  status: 'pending' | 'published' | 'stuck' | 'compensated' | 'discarded';
  /** Publish attempts so far, over every retry round. */
  attempts: number;
  /** Operator retry rounds so far. */
  retryRounds: number;
  lastError: string | null;
  /** Why the event is no longer pending, when an operator ended it. */
  resolutionReason: string | null;
}

export interface DiscardRequest {
  /** Required: why the event is dropped (kept on the event, for audit). */
  reason: string;
}

export interface CompensateRequest {
  /** Optional note kept with the resolution. */
  reason?: string;
}

export const stateQuery = defineQuery<EventWorkflowState>('state');

/** An ordered event handed to its key's sequencer. */
export interface EnqueuedEvent {
  eventId: string;
  sequence: number;
  type: string;
  aggregateId: string;
}

/** What a key's sequencer is doing: which event holds the key, which wait behind it. */
export interface SequencerState {
  topic: string;
  key: string;
  /** The sequence it publishes next (null before it knows). */
  next: number | null;
  /** The event being published now, or stuck and holding the key back. */
  holding: string | null;
  /** Events waiting behind it, in order. */
  waiting: string[];
  /** The highest sequence waiting (null: none): a full buffer still takes lower ones, each evicting a higher one. */
  highestWaiting?: number | null;
  /** Its buffer is at its limit: later events wait in the store until it has room. */
  full?: boolean;
}

/** One ordered event, or several of one key (the relay sends a key's events of a batch in one signal). */
export const enqueueSignal = defineSignal<[EnqueuedEvent | EnqueuedEvent[]]>('enqueue');
export const sequencerQuery = defineQuery<SequencerState>('sequencer');

export const retrySignal = defineSignal<[]>('retry');
export const compensateSignal = defineSignal<[CompensateRequest]>('compensate');
export const discardSignal = defineSignal<[DiscardRequest]>('discard');

export const retryUpdate = defineUpdate<EventWorkflowState, []>('retry');
export const compensateUpdate = defineUpdate<EventWorkflowState, [CompensateRequest]>('compensate');
export const discardUpdate = defineUpdate<EventWorkflowState, [DiscardRequest]>('discard');
