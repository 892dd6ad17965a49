// Inputs and outputs of the outbox workflows: plain data, as Temporal's JSON converter carries it.

/** How the publish activity is retried and timed out. */
export interface PublishPolicy {
  /** Longest one publish attempt may take. */
  startToCloseTimeoutMs: number;
  /** Wait before the first retry. */
  initialIntervalMs: number;
  /** Each retry waits this much longer than the one before. */
  backoffCoefficient: number;
  /** Longest wait between two attempts. */
  maximumIntervalMs: number;
  /** Attempts before the event is escalated as stuck; 0 = no limit (never escalates on transient errors). */
  maximumAttempts: number;
  /** Topic that receives a copy of a stuck event (envelope and error headers); none when empty. */
  deadLetterTopic?: string;
  /**
   * Run the publish as a local activity: fewer history events and task round trips per event, at
   * the cost of the attempts showing as markers rather than activity events. @default false
   */
  localActivity?: boolean;
  /**
   * Run the first attempt as a local activity and, if it fails, the others as the activity (unless
   * `localActivity`): a published event costs no activity task; a failing one shows its attempts and
   * pending activity in the Web UI like any other. @default true
   */
  firstAttemptLocal?: boolean;
}

/**
 * Ten attempts with backoff from 1 s to a minute (about five minutes in all), then escalation: the
 * event is marked stuck and waits for an operator. Failures that can never pass escalate at once.
 */
export const DEFAULT_PUBLISH_POLICY: PublishPolicy = {
  startToCloseTimeoutMs: 30_000,
  initialIntervalMs: 1_000,
  backoffCoefficient: 2,
  maximumIntervalMs: 60_000,
  maximumAttempts: 10,
  firstAttemptLocal: true,
};

export interface PublishEventInput {
  eventId: string;
  policy: PublishPolicy;
  /** Publish again on purpose (operator replay), even though the store says `published`. */
  replay?: boolean;
  /**
   * The receipt of a publication its key's run made and the store recorded (a key sequencer's
   * recording workflow): the workflow completes with it as published, with no activity and no store
   * request (behind `Patches.publishPatchesFolded`; without the patch it reads the store as before).
   */
  recorded?: PublishReceipt;
}

/** Where the event landed in Kafka, as the publish activity reports it. */
export interface PublishReceipt {
  eventId: string;
  topic: string;
  partition: number;
  /** Kafka offset (int64 as a decimal string). */
  offset: string;
  /** ISO-8601 time of Kafka's acknowledgement (or of the earlier publication, if already published). */
  publishedAt: string;
  /** Activity attempt that published it. */
  attempts: number;
  /** The store already said `published`: nothing was sent again. */
  alreadyPublished: boolean;
  /** Sent again on purpose by an operator's replay (same event id). */
  replayed?: boolean;
}

/**
 * What a publish attempt's heartbeats carry: until when a send it handed to the producer may still
 * be acknowledged (ms since the epoch; null: none on its way). A workflow whose attempt timed out
 * reads it from the timeout's last heartbeat details and waits that long before it escalates.
 */
export interface PublishHeartbeat {
  inFlightUntil: number | null;
}

/** How an event's workflow ended. */
export type PublishEventOutcome =
  | { status: 'published'; receipt: PublishReceipt }
  | { status: 'compensated' | 'discarded'; eventId: string; reason: string | null };

/**
 * Events beyond a key sequencer's buffer limit are dropped from its buffer (the highest sequences):
 * they stay pending in the store, and the relay's sweeper hands them over again, the lowest first (a
 * full buffer drops a later event for each lower one it gets).
 * It keeps the continue-as-new payload (the buffer) far below Temporal's 2 MB limit.
 */
export const DEFAULT_SEQUENCER_BUFFER_LIMIT = 500;

/**
 * How long a key sequencer waits for its `publishRun` local activity. The run's claim (the worker's
 * send window + ack timeout + 15 s, 67 s by default) is what shuts other publishers out; this only
 * bounds the wait, after which the key goes one event at a time and its events' workflows meet the
 * claim (CLAIMED_BY_FAST_PATH, retried) until the send has ended.
 */
export const SEQUENCER_RUN_TIMEOUT_MS = 120_000;

/** Most events of a key a sequencer publishes in one run (one Kafka request, one workflow task starting their workflows). */
export const DEFAULT_SEQUENCER_RUN_LIMIT = 100;
