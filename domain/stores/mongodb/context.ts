/**
 * What every part of the MongoDB store shares: its collections, database and logger, the documents
 * it keeps, what it uses of the driver (so unit tests can pass fakes), and how a document becomes an OutboxEvent.
 */
import type {
  AnyBulkWriteOperation,
  ChangeStreamOptions,
  ClientSession,
  Db,
  Document,
  Filter,
  FindOneAndUpdateOptions,
  IndexDescription,
  OptionalUnlessRequiredId,
  ResumeToken,
  Timestamp,
  UpdateFilter,
  WithId,
} from 'mongodb';
import {
  checkPartitionCount,
  CLOUDEVENTS_SPEC_VERSION,
  ENVELOPE_VERSION,
  silentLogger,
  type EventOwner,
  type JsonValue,
  type Logger,
  type OutboxEvent,
  type PublishResult,
} from '../../outbox';

/** The MongoDB adapter's transaction handle: the session of the caller's `withTransaction`. */
export interface MongoTx {
  session: ClientSession;
}

/** The outbox document: the envelope, with the event id as `_id`. */
export interface OutboxDocument extends Omit<OutboxEvent, 'id'> {
  _id: string;
  /** Who publishes it (see OutboxStore.claim); absent: nobody yet. */
  owner?: EventOwner | null;
  claimedUntil?: Date | null;
  /** The fast claimant's token (see OutboxStore.claim); null for a workflow's claim. */
  claimToken?: string | null;
  /** The claim call that last took it: a claimant reads back what this call, not an earlier one, got. */
  claimNonce?: string | null;
  /** The partition of its key (issue 17); absent on documents written before partitions came (matched as null). */
  partition?: number | null;
}

export interface CheckpointDocument {
  _id: string;
  resumeToken: ResumeToken;
  updatedAt: Date;
  /**
   * The cluster time of the last event the feed had read when it saved this position: the position
   * is at or after it. Resume tokens cannot be ordered (SecantusDB's do not even sort by time); these
   * can, so a feed taking partitions whose positions differ starts at the earliest of them. Absent on
   * positions saved by a release before it.
   */
  since?: Timestamp;
}

/** Where a feed starts: after a saved resume token, or at a cluster time (partitions whose positions differ). */
export type FeedStart = { resumeToken: ResumeToken; since?: Timestamp } | { startAt: Timestamp };

/** The outbox's partition count (issue 17), written once by the first setup. */
export interface MetaDocument {
  _id: string;
  count: number;
}

/** One partition's lease in a relay group: `_id` is `partitionCheckpointName(group, partition)`. */
export interface LeaseDocument {
  _id: string;
  group: string;
  partition: number;
  owner: string | null;
  expiresAt: Date | null;
}

/** A live relay of a group: `_id` is group, NUL, member. */
export interface RelayDocument {
  _id: string;
  group: string;
  member: string;
  expiresAt: Date;
}

/**
 * What the adapter uses of the driver, by the driver's own signatures: a real `Db` satisfies it,
 * and unit tests pass small fakes of sessions and change streams through it.
 */
export interface MongoDbLike {
  collection<T extends Document>(name: string): MongoCollectionLike<T>;
  createCollection(name: string): Promise<unknown>;
  /** Runs a database command (`hello` gives the server's clock for leases); without it, this process's clock. */
  command?(command: Document): Promise<Document>;
}

export interface MongoCollectionLike<T extends Document> {
  insertOne(doc: OptionalUnlessRequiredId<T>, options: { session: ClientSession }): Promise<unknown>;
  findOne(filter: Filter<T>): Promise<T | null>;
  updateOne(filter: Filter<T>, update: UpdateFilter<T>, options?: { upsert?: boolean }): Promise<{ matchedCount: number }>;
  updateMany(filter: Filter<T>, update: UpdateFilter<T>): Promise<{ matchedCount: number }>;
  deleteOne(filter: Filter<T>): Promise<unknown>;
  deleteMany(filter: Filter<T>): Promise<{ deletedCount: number }>;
  find(filter: Filter<T>, options: { sort: Document; limit: number }): { toArray(): Promise<T[]> };
  aggregate<R extends Document>(pipeline: Document[]): { toArray(): Promise<R[]> };
  estimatedDocumentCount(): Promise<number>;
  bulkWrite(operations: AnyBulkWriteOperation<T>[], options: { ordered: boolean }): Promise<{ matchedCount: number }>;
  createIndexes(indexes: IndexDescription[]): Promise<unknown>;
  watch(pipeline: Document[], options: ChangeStreamOptions): ChangeStreamLike;
  findOneAndUpdate(filter: Filter<T>, update: UpdateFilter<T>, options: FindOneAndUpdateOptions): Promise<WithId<T> | null>;
}

export interface ChangeStreamLike {
  tryNext(): Promise<Document | null>;
  /** Changes already received: `tryNext()` returns one without asking the server. */
  bufferedCount(): number;
  readonly resumeToken: ResumeToken;
  close(): Promise<void>;
}

export interface MongoStoreOptions {
  /** The database holding the outbox collections (`client.db(name)`). */
  db: Db | MongoDbLike;
  /** Collection of outbox documents. @default "outbox_events" */
  eventsCollection?: string;
  /** Collection of change-stream checkpoints. @default "outbox_checkpoints" */
  checkpointsCollection?: string;
  logger?: Logger;
  /**
   * Partitions of the outbox, fixed by the first `setup()` (issue 17). A later setup with another
   * count fails with INVALID_CONFIG. @default DEFAULT_PARTITION_COUNT (when setup creates them)
   */
  partitions?: number;
}

/**
 * Server errors after which a saved resume token cannot be used: history lost from the oplog
 * (ChangeStreamHistoryLost, 286), token not found (ChangeStreamFatalError, 280), invalid token
 * (InvalidResumeToken, 260).
 */
export const POSITION_LOST_CODES = new Set([286, 280, 260]);

/** A change stream resume token is a document with a hex string `_data` (MongoDB 4.2+). */
export function looksLikeResumeToken(token: unknown): boolean {
  return typeof token === 'object' && token !== null && typeof (token as { _data?: unknown })._data === 'string';
}


/** One store's collections, database and logger: what each of its parts (schema, events, claims, feed, partitions, admin) works on. */
export interface MongoStoreContext {
  readonly db: MongoDbLike;
  readonly events: MongoCollectionLike<OutboxDocument>;
  readonly checkpoints: MongoCollectionLike<CheckpointDocument>;
  readonly sequences: MongoCollectionLike<{ _id: string; sequence: number }>;
  readonly meta: MongoCollectionLike<MetaDocument>;
  readonly leases: MongoCollectionLike<LeaseDocument>;
  readonly relays: MongoCollectionLike<RelayDocument>;
  /** The events collection's name first. */
  readonly collectionNames: readonly string[];
  readonly logger: Logger;
  readonly partitionsOption: number | undefined;
  /** The outbox's partition count once read (it never changes). */
  partitionCountRead: number | undefined;
  /** setup() or checkSetUp() found the store set up (checked once, at the first add()). */
  setUpChecked: boolean;
}

export function mongoStoreContext(options: MongoStoreOptions): MongoStoreContext {
  const db: MongoDbLike = options.db;
  const events = options.eventsCollection ?? 'outbox_events';
  const checkpoints = options.checkpointsCollection ?? 'outbox_checkpoints';
  const sequences = 'outbox_key_sequences';
  return {
    db,
    collectionNames: [events, checkpoints, sequences, 'outbox_meta', 'outbox_leases', 'outbox_relays'],
    meta: db.collection<MetaDocument>('outbox_meta'),
    leases: db.collection<LeaseDocument>('outbox_leases'),
    relays: db.collection<RelayDocument>('outbox_relays'),
    partitionsOption: options.partitions === undefined ? undefined : checkPartitionCount(options.partitions),
    events: db.collection<OutboxDocument>(events),
    checkpoints: db.collection<CheckpointDocument>(checkpoints),
    sequences: db.collection<{ _id: string; sequence: number }>(sequences),
    logger: options.logger ?? silentLogger,
    partitionCountRead: undefined,
    setUpChecked: false,
  };
}

/** A filter of the events in `partitions`; events written before partitions came have none and count as partition 0. */
export function partitionMatch(partitions: readonly number[]): { partition: { $in: Array<number | null> } } {
  return { partition: { $in: partitions.includes(0) ? [...partitions, null] : [...partitions] } };
}

/** The same filter on a change event's document. */
export function prefixed(prefix: string, filter: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(filter).map(([k, v]) => [`${prefix}${k}`, v]));
}

/** A BSON Timestamp (a change event's cluster time), told by its BSON type: the adapter loads no driver code of its own. */
export function isTimestamp(value: unknown): value is Timestamp {
  return typeof value === 'object' && value !== null && (value as { _bsontype?: unknown })._bsontype === 'Timestamp';
}

export function isPositionLost(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && POSITION_LOST_CODES.has(code);
}

/** The filter and update that mark one event published: only a `pending` (or `stuck`) one. */
export function publishedUpdate(result: PublishResult): [Filter<OutboxDocument>, UpdateFilter<OutboxDocument>] {
  return [
    { _id: result.eventId, status: { $in: ['pending', 'stuck'] } },
    { $set: { status: 'published', publishedAt: result.publishedAt, kafka: { partition: result.partition, offset: result.offset }, attempts: result.attempts, lastError: null } },
  ];
}

/** A duplicate key on the Kafka position index: another event is recorded at that position (see markPublished). */
export function isKafkaPositionTaken(err: unknown): boolean {
  const { code, message, errmsg } = err as { code?: unknown; message?: unknown; errmsg?: unknown };
  return code === 11000 && String(message ?? errmsg).includes('outbox_kafka_position');
}

export function toEvent(doc: OutboxDocument): OutboxEvent {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- ownership is the store's, not the envelope's
  const { _id, owner, claimedUntil, claimToken, claimNonce, partition, ...rest } = doc;
  return {
    ...rest,
    id: _id,
    envelopeVersion: ENVELOPE_VERSION,
    specVersion: CLOUDEVENTS_SPEC_VERSION,
    payload: rest.payload as JsonValue,
    headers: rest.headers ?? {},
    lastError: rest.lastError ?? null,
    publishedAt: rest.publishedAt ?? null,
    kafka: rest.kafka ?? null,
    resolution: rest.resolution ?? null,
    sequence: rest.sequence ?? null,
  };
}

/**
 * The database server's time: `hello`'s localTime, the moment the server answered. The update that
 * compares a lease with it runs later, so the server's clock then reads at least this: a lease is
 * taken over only once it has certainly ended. (Corrected by half the round trip, as it once was,
 * it ran ahead whenever the answer waited in a busy server's queue, and could let a lease be taken
 * over before it ended.) A lease written from it ends no later than the one asked for. A server
 * that does not report it leaves this process's clock.
 */
export async function serverNow(t: MongoStoreContext): Promise<Date> {
  if (t.db.command === undefined) return new Date();
  const hello = await t.db.command({ hello: 1 });
  const localTime: unknown = hello.localTime;
  return localTime instanceof Date ? localTime : new Date();
}
