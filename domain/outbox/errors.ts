/** Every failure txoutbox reports has one of these codes. */
export const OutboxErrorCode = {
  /** The event's type (or type and schema version) was never registered. */
  unregisteredEventType: 'UNREGISTERED_EVENT_TYPE',
  /** The payload does not satisfy the schema registered for its type and version. */
  invalidPayload: 'INVALID_PAYLOAD',
  /** A topic name Kafka would refuse. */
  invalidTopic: 'INVALID_TOPIC',
  /** A missing, empty or oversized message key. */
  invalidKey: 'INVALID_KEY',
  /** The canonical payload is larger than the configured limit. */
  payloadTooLarge: 'PAYLOAD_TOO_LARGE',
  /** The payload holds something JSON cannot carry (BigInt, function, cycle, Date, NaN, ...). */
  notSerializable: 'NOT_SERIALIZABLE',
  /** Any other envelope field is missing or malformed (aggregate id, headers, time, ...). */
  invalidEvent: 'INVALID_EVENT',
  /** The event was written outside a database transaction. */
  notInTransaction: 'NOT_IN_TRANSACTION',
  /** The store's tables or collections and indexes were never created (`txoutbox migrate`, or `store.setup()`). */
  storeNotSetUp: 'STORE_NOT_SET_UP',
  /** Setup (`txoutbox migrate`) gave up waiting for a lock a running transaction holds; run it again. */
  setupBlocked: 'SETUP_BLOCKED',
  /**
   * A version of an event type breaks the compatibility it promises with an earlier one (a field a
   * consumer needs is gone, a type narrowed, ...): the error names the field.
   */
  incompatibleSchema: 'INCOMPATIBLE_SCHEMA',
  /**
   * A stored event cannot be turned into the version its type is published as (its upcast threw or
   * gave a payload the version refuses, or it is newer): it stays in the store, stuck with the reason.
   */
  upcastFailed: 'UPCAST_FAILED',
  /** Options or environment that cannot work. */
  invalidConfig: 'INVALID_CONFIG',
  /** The store has no event with that id. */
  eventNotFound: 'EVENT_NOT_FOUND',
  /** Kafka refused or failed the publication. */
  publishFailed: 'PUBLISH_FAILED',
  /**
   * Another event is already recorded at the Kafka topic, partition and offset an acknowledgement
   * named: that acknowledgement cannot be this event's publication. Retriable: publishing again
   * writes it at a position of its own.
   */
  kafkaPositionTaken: 'KAFKA_POSITION_TAKEN',
  /** A saved change-feed position the store cannot use (ahead of the database, unreadable): dropped, and the sweeper covers the gap. */
  checkpointCorrupt: 'CHECKPOINT_CORRUPT',
  /** A relay no longer holds the lease of a partition it read: it may not save that partition's position. */
  leaseLost: 'LEASE_LOST',
} as const;
export type OutboxErrorCode = (typeof OutboxErrorCode)[keyof typeof OutboxErrorCode];

/** What an error is about, so logs and operators can find the event. */
export interface OutboxErrorContext {
  eventId?: string;
  type?: string;
  topic?: string;
  /** Path inside the payload (e.g. `$.items[2].price`) or name of the offending field. */
  path?: string;
  /** The change feed (checkpoint name) the error is about. */
  feed?: string;
  /** A PostgreSQL transaction id (feed positions). */
  txid?: string;
  /** A relay of a partitioned group (issue 17), and the partitions the error is about. */
  member?: string;
  partitions?: string;
  /** The PostgreSQL schema or MongoDB collection the error is about. */
  schema?: string;
  collection?: string;
  /** Validation issues reported by the payload schema. */
  issues?: ReadonlyArray<{ message: string; path?: string }>;
}

/**
 * The one error class of txoutbox. `retriable` says whether doing the same thing again can succeed
 * (a broker outage can end; an invalid payload stays invalid).
 */
export class OutboxError extends Error {
  override readonly name = 'OutboxError';
  readonly code: OutboxErrorCode;
  readonly retriable: boolean;
  readonly context: OutboxErrorContext;

  constructor(
    code: OutboxErrorCode,
    message: string,
    options: { retriable?: boolean; context?: OutboxErrorContext; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.context = options.context ?? {};
  }
}

/**
 * The error of a store that refused to record `results` because another event already holds one of
 * their Kafka positions (each adapter's unique index). `cause` is the driver's duplicate-key error.
 */
export function kafkaPositionTaken(results: ReadonlyArray<{ eventId: string; topic: string; partition: number; offset: string }>, cause: unknown): OutboxError {
  const [first] = results;
  const single = results.length === 1 && first !== undefined;
  return new OutboxError(
    OutboxErrorCode.kafkaPositionTaken,
    `another event is already recorded at a Kafka position acknowledged for ${single ? `event ${first.eventId} (${first.topic}/${first.partition}@${first.offset})` : `${results.length} events`}: not marked published`,
    { retriable: true, cause, context: single ? { eventId: first.eventId, topic: first.topic } : {} },
  );
}

/**
 * What an event whose recorded Kafka position was reused keeps in `lastError`: where it had landed,
 * and which event Kafka wrote there since (see `MarkOptions.supersede`).
 */
export function supersededNote(result: { eventId: string; topic: string; partition: number; offset: string }): string {
  return `Kafka reused its position ${result.topic}/${result.partition}@${result.offset} for event ${result.eventId} (the topic was deleted and created again, or its log truncated): this event was published before that, to the old log`;
}

export function isOutboxError(err: unknown, code?: OutboxErrorCode): err is OutboxError {
  return err instanceof OutboxError && (code === undefined || err.code === code);
}
