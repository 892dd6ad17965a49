import { randomUUID } from 'node:crypto';
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
  createChangeFeed,
  DEFAULT_PARTITION_COUNT,
  leaseLostError,
  partitionCheckpointName,
  partitionOf,
  type PartitionStatus,
  DEFAULT_PURGE_BATCH,
  ENVELOPE_VERSION,
  CLOUDEVENTS_SPEC_VERSION,
  kafkaPositionTaken,
  OutboxError,
  OutboxErrorCode,
  silentLogger,
  type ChangeFeed,
  type FeedBatch,
  type FeedGap,
  type FeedOptions,
  type JsonValue,
  type Logger,
  type EventOwner,
  type MarkManyResult,
  type MarkOptions,
  type MarkResult,
  supersededNote,
  type OutboxEvent,
  type OutboxStore,
  type PublishResult,
  type ListQuery,
  type PurgeOptions,
  type OutboxStats,
  type StatusChange,
} from '../outbox';

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

interface CheckpointDocument {
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
type FeedStart = { resumeToken: ResumeToken; since?: Timestamp } | { startAt: Timestamp };

/** The outbox's partition count (issue 17), written once by the first setup. */
interface MetaDocument {
  _id: string;
  count: number;
}

/** One partition's lease in a relay group: `_id` is `partitionCheckpointName(group, partition)`. */
interface LeaseDocument {
  _id: string;
  group: string;
  partition: number;
  owner: string | null;
  expiresAt: Date | null;
}

/** A live relay of a group: `_id` is group, NUL, member. */
interface RelayDocument {
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
  countDocuments(filter: Filter<T>): Promise<number>;
  find(filter: Filter<T>, options: { sort: Document; limit: number }): { toArray(): Promise<T[]> };
  aggregate<R extends Document>(pipeline: Document[]): { toArray(): Promise<R[]> };
  bulkWrite(operations: AnyBulkWriteOperation<T>[], options: { ordered: boolean }): Promise<{ matchedCount: number }>;
  createIndexes(indexes: IndexDescription[]): Promise<unknown>;
  watch(pipeline: Document[], options: ChangeStreamOptions): ChangeStreamLike;
  findOneAndUpdate(filter: Filter<T>, update: UpdateFilter<T>, options: FindOneAndUpdateOptions): Promise<WithId<T> | null>;
}

export interface ChangeStreamLike {
  tryNext(): Promise<Document | null>;
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
const POSITION_LOST_CODES = new Set([286, 280, 260]);

/** A change stream resume token is a document with a hex string `_data` (MongoDB 4.2+). */
function looksLikeResumeToken(token: unknown): boolean {
  return typeof token === 'object' && token !== null && typeof (token as { _data?: unknown })._data === 'string';
}

/**
 * The MongoDB adapter (the product's target). Writes go into the caller's transaction
 * (`session.withTransaction`); the feed is a change stream on inserts, opened with `startAfter`
 * from the saved resume token. The token is saved by `checkpoint()`, which the relay calls only
 * after Temporal accepted the starts; empty batches save the driver's post-batch resume token too,
 * so a quiet outbox never lets its token fall off the oplog.
 */
export class MongoOutboxStore implements OutboxStore<MongoTx> {
  readonly kind = 'mongodb';
  private readonly events: MongoCollectionLike<OutboxDocument>;
  private readonly checkpoints: MongoCollectionLike<CheckpointDocument>;
  private readonly sequences: MongoCollectionLike<{ _id: string; sequence: number }>;
  private readonly logger: Logger;
  private readonly db: MongoDbLike;
  private readonly collectionNames: readonly string[];
  private readonly meta: MongoCollectionLike<MetaDocument>;
  private readonly leases: MongoCollectionLike<LeaseDocument>;
  private readonly relays: MongoCollectionLike<RelayDocument>;
  private readonly partitionsOption: number | undefined;
  /** The outbox's partition count once read (it never changes). */
  private partitionCountRead: number | undefined;

  constructor(options: MongoStoreOptions) {
    this.db = options.db;
    const events = options.eventsCollection ?? 'outbox_events';
    const checkpoints = options.checkpointsCollection ?? 'outbox_checkpoints';
    const sequences = 'outbox_key_sequences';
    this.collectionNames = [events, checkpoints, sequences, 'outbox_meta', 'outbox_leases', 'outbox_relays'];
    this.meta = this.db.collection<MetaDocument>('outbox_meta');
    this.leases = this.db.collection<LeaseDocument>('outbox_leases');
    this.relays = this.db.collection<RelayDocument>('outbox_relays');
    this.partitionsOption = options.partitions === undefined ? undefined : checkPartitionCount(options.partitions);
    this.events = this.db.collection<OutboxDocument>(events);
    this.checkpoints = this.db.collection<CheckpointDocument>(checkpoints);
    this.sequences = this.db.collection<{ _id: string; sequence: number }>(sequences);
    this.logger = options.logger ?? silentLogger;
  }

  /** Creates the collections (a transaction is no place to create one: mongod before 4.4 refuses) and indexes. */
  async setup(): Promise<string[]> {
    const done: string[] = [];
    // Asked first: a server may answer createCollection of an existing one without NamespaceExists (SecantusDB does).
    const listed = this.db.command === undefined ? [] : ((await this.db.command({ listCollections: 1, nameOnly: true })).cursor?.firstBatch ?? []) as Array<{ name?: unknown }>;
    const present = new Set(listed.map((c) => c.name));
    for (const name of this.collectionNames) {
      if (present.has(name)) continue;
      const created = await this.db.createCollection(name).then(
        () => true,
        (err: unknown) => {
          if ((err as { codeName?: unknown }).codeName !== 'NamespaceExists') throw err;
          return false;
        },
      );
      if (created) done.push(`created collection ${name}`);
    }
    const wanted = this.partitionsOption ?? DEFAULT_PARTITION_COUNT;
    // Upserted only when absent: the count is fixed by the first set-up, and read back as it is.
    const before = await this.meta.findOneAndUpdate({ _id: 'partitions' }, { $setOnInsert: { count: wanted } }, { upsert: true, returnDocument: 'before' });
    if (before === null) done.push(`set the outbox's partition count to ${wanted}`);
    const stored = before?.count ?? wanted;
    if (this.partitionsOption !== undefined && stored !== this.partitionsOption) {
      throw new OutboxError(OutboxErrorCode.invalidConfig, `mongodb store: the outbox has ${String(stored)} partitions, fixed at its set-up; it cannot be set up with ${this.partitionsOption}`);
    }
    const existing = new Set(await this.eventIndexNames());
    const missing = MongoOutboxStore.EVENT_INDEXES.filter((index) => !existing.has(index.name));
    // createIndexes builds on a live collection without holding its lock for the build (MongoDB 4.2+).
    if (missing.length > 0) await this.events.createIndexes(missing);
    for (const index of missing) done.push(`created index ${index.name} on ${this.eventsName()}`);
    this.setUpChecked = true;
    return done;
  }

  /** The events collection's indexes; the marker index comes last. */
  private static readonly EVENT_INDEXES: Array<IndexDescription & { name: string }> = [
    { key: { status: 1, _id: 1 }, name: 'outbox_status_id' },
    { key: { _id: 1 }, name: 'outbox_pending_id', partialFilterExpression: { status: 'pending' } },
    { key: { aggregateType: 1, aggregateId: 1 }, name: 'outbox_aggregate' },
    // One Kafka position holds one message: a second event recorded there was never written by that
    // acknowledgement (see markPublished).
    {
      key: { topic: 1, 'kafka.partition': 1, 'kafka.offset': 1 },
      name: 'outbox_kafka_position',
      unique: true,
      partialFilterExpression: { 'kafka.offset': { $type: 'string' } },
    },
  ];

  /** The index whose presence says setup() ran (it is the last one setup() creates). */
  private static readonly SET_UP_MARKER_INDEX = 'outbox_kafka_position';
  private setUpChecked = false;

  private eventsName(): string {
    return this.collectionNames[0] ?? 'outbox_events';
  }

  /** The names of the events collection's indexes (none when it does not exist); null without commands. */
  private async eventIndexNames(): Promise<unknown[] | null> {
    if (this.db.command === undefined) return null; // a stand-in database without commands: nothing to ask
    return this.db.command({ listIndexes: this.eventsName() }).then(
      (reply): unknown[] => ((reply.cursor as { firstBatch?: Array<{ name?: unknown }> } | undefined)?.firstBatch ?? []).map((i) => i.name),
      (err: unknown) => {
        if ((err as { codeName?: unknown }).codeName === 'NamespaceNotFound') return [] as unknown[];
        throw err;
      },
    );
  }

  async checkSetUp(): Promise<void> {
    const names = await this.eventIndexNames();
    if (names === null) return;
    if (!names.includes(MongoOutboxStore.SET_UP_MARKER_INDEX)) {
      throw new OutboxError(
        OutboxErrorCode.storeNotSetUp,
        `mongodb store: collection ${this.eventsName()} has no index ${MongoOutboxStore.SET_UP_MARKER_INDEX}: the outbox store is not set up in this database; run \`txoutbox migrate\` once (or call store.setup() from your migrations)`,
        { context: { collection: this.eventsName() } },
      );
    }
    this.setUpChecked = true;
  }

  async insert(event: OutboxEvent, tx: MongoTx): Promise<number | null> {
    const session = tx?.session;
    if (!session || typeof session.inTransaction !== 'function' || !session.inTransaction()) {
      throw new OutboxError(
        OutboxErrorCode.notInTransaction,
        'mongodb store: add() must run inside session.withTransaction(), with { session }',
        { context: { eventId: event.id, type: event.type } },
      );
    }
    // Once per store: a database never set up gets STORE_NOT_SET_UP at the first add(), not an event
    // written where no relay reads it (MongoDB would create the collection on the fly).
    if (!this.setUpChecked) await this.checkSetUp();
    let sequence: number | null = null;
    if (event.sequence !== null) {
      // Incremented in the caller's transaction: a concurrent writer of the same key gets a write
      // conflict and retries after this one commits, so sequences follow commit order.
      const counter = await this.sequences.findOneAndUpdate(
        { _id: `${event.topic}\u0000${event.key}` },
        { $inc: { sequence: 1 } },
        { upsert: true, returnDocument: 'after', session },
      );
      sequence = counter?.sequence ?? null;
    }
    const partitions = await this.partitionCountIfSetUp();
    const { id, ...rest } = event;
    await this.events.insertOne({ _id: id, ...rest, sequence, ...(partitions === null ? {} : { partition: partitionOf(event.key, partitions) }) }, { session });
    return sequence;
  }

  /** The partition count, read once; null while the outbox was not set up since partitions came (its events then count as partition 0). */
  private async partitionCountIfSetUp(): Promise<number | null> {
    if (this.partitionCountRead !== undefined) return this.partitionCountRead;
    const count = (await this.meta.findOne({ _id: 'partitions' }))?.count ?? null;
    if (count !== null) this.partitionCountRead = count;
    return count;
  }

  async partitionCount(): Promise<number> {
    const count = await this.partitionCountIfSetUp();
    if (count === null) {
      throw new OutboxError(OutboxErrorCode.storeNotSetUp, 'mongodb store: no partition count: run `txoutbox migrate` once (or call store.setup() from your migrations)', {
        context: { collection: 'outbox_meta' },
      });
    }
    return count;
  }

  async heartbeat(group: string, member: string, ttlMs: number): Promise<string[]> {
    const now = await this.serverNow();
    await this.relays.updateOne({ _id: `${group}\u0000${member}` }, { $set: { group, member, expiresAt: new Date(now.getTime() + ttlMs) } }, { upsert: true });
    // Members gone for an hour are forgotten (a crashed relay never leaves).
    await this.relays.deleteMany({ group, expiresAt: { $lt: new Date(now.getTime() - 3_600_000) } });
    const live = await this.relays.find({ group, expiresAt: { $gt: now } }, { sort: { member: 1 }, limit: 10_000 }).toArray();
    return [...new Set([...live.map((r) => r.member), member])].sort();
  }

  async acquire(group: string, member: string, partitions: readonly number[], ttlMs: number): Promise<number[]> {
    if (partitions.length === 0) return [];
    const now = await this.serverNow();
    const expiresAt = new Date(now.getTime() + ttlMs);
    const ids = partitions.map((p) => partitionCheckpointName(group, p));
    // One update renews or takes every lease this member holds, nobody holds, or that ran out: all of
    // them get the same end, so a relay that stops between two rounds never holds leases of different
    // ends (one update a partition left a window where some were renewed and some not).
    await this.leases.updateMany({ _id: { $in: ids }, $or: [{ owner: member }, { owner: null }, { expiresAt: { $lte: now } }] }, { $set: { owner: member, expiresAt } });
    const readLeases = (): Promise<LeaseDocument[]> => this.leases.find({ _id: { $in: ids } }, { sort: { partition: 1 }, limit: ids.length }).toArray();
    let leases = await readLeases();
    const never = partitions.filter((p) => !leases.some((l) => l.partition === p));
    if (never.length > 0) {
      // A lease never written: inserted; when another member's insert came first, the insert fails on
      // the _id and the lease is not taken.
      for (const partition of never) {
        await this.leases
          .updateOne({ _id: partitionCheckpointName(group, partition), owner: null }, { $set: { group, partition, owner: member, expiresAt } }, { upsert: true })
          .catch((err: unknown) => {
            if ((err as { code?: unknown }).code !== 11000) throw err;
          });
      }
      leases = await readLeases();
    }
    return leases.filter((l) => l.owner === member && l.expiresAt?.getTime() === expiresAt.getTime()).map((l) => l.partition);
  }

  async releaseLeases(group: string, member: string, partitions: readonly number[], leave = false): Promise<void> {
    await this.leases.updateMany({ group, owner: member, partition: { $in: [...partitions] } }, { $set: { owner: null, expiresAt: null } });
    if (leave) await this.relays.deleteOne({ _id: `${group}\u0000${member}` });
  }

  async partitionStatus(group: string): Promise<PartitionStatus[]> {
    const count = await this.partitionCount();
    const [leases, pending] = await Promise.all([
      this.leases.find({ group }, { sort: { partition: 1 }, limit: count }).toArray(),
      // One pass over the pending events: each partition's count and oldest (events written before
      // partitions came have none and count as partition 0).
      this.events
        .aggregate<{ _id: number; pending: number; oldest: { id: string; occurredAt: Date } }>([
          { $match: { status: 'pending' } },
          { $sort: { _id: 1 } },
          { $group: { _id: { $ifNull: ['$partition', 0] }, pending: { $sum: 1 }, oldest: { $first: { id: '$_id', occurredAt: '$occurredAt' } } } },
        ])
        .toArray(),
    ]);
    return Array.from({ length: count }, (_, p): PartitionStatus => {
      const lease = leases.find((l) => l.partition === p);
      const counted = pending.find((c) => c._id === p);
      return { partition: p, owner: lease?.owner ?? null, expiresAt: lease?.expiresAt ?? null, pending: counted?.pending ?? 0, oldestPending: counted?.oldest ?? null };
    });
  }

  async nextOpenSequence(topic: string, key: string): Promise<number | null> {
    const [first] = await this.events
      .find({ topic, key, sequence: { $ne: null }, status: { $in: ['pending', 'stuck'] } }, { sort: { sequence: 1 }, limit: 1 })
      .toArray();
    return first?.sequence ?? null;
  }

  async get(eventId: string): Promise<OutboxEvent | null> {
    const doc = await this.events.findOne({ _id: eventId });
    return doc ? toEvent(doc) : null;
  }

  async markPublished(result: PublishResult, options: MarkOptions = {}): Promise<MarkResult> {
    if (options.supersede === true) {
      // Kafka reused this position (the caller read this event's record there): whoever was recorded at it is moved aside.
      await this.events.updateMany(
        { topic: result.topic, 'kafka.partition': result.partition, 'kafka.offset': result.offset, _id: { $ne: result.eventId } },
        { $set: { kafka: null, lastError: supersededNote(result) } },
      );
    }
    const { matchedCount } = await this.events.updateOne(...publishedUpdate(result)).catch((err: unknown) => {
      throw isKafkaPositionTaken(err) ? kafkaPositionTaken([result], err) : err;
    });
    if (matchedCount === 1) return 'marked';
    return (await this.events.findOne({ _id: result.eventId })) === null ? 'not-found' : 'already-published';
  }

  async claim(eventIds: readonly string[], owner: EventOwner, leaseMs = 60_000, token?: string): Promise<string[]> {
    if (eventIds.length === 0) return [];
    // Leases are compared on the server's clock: every relay and worker then agrees on when one ends,
    // whatever their own clocks say (a process running fast would take over live leases).
    const now = await this.serverNow();
    const claimNonce = randomUUID();
    const filter: Filter<OutboxDocument> =
      owner === 'fast'
        ? { _id: { $in: [...eventIds] }, status: 'pending', $or: [{ owner: null }, { owner: 'fast', claimedUntil: { $lt: now } }] }
        : { _id: { $in: [...eventIds] }, status: { $in: ['pending', 'stuck'] }, $or: [{ owner: null }, { owner: 'workflow' }, { claimedUntil: { $lt: now } }] };
    const claimedUntil = owner === 'fast' ? new Date(now.getTime() + leaseMs) : null;
    const claimToken = owner === 'fast' ? (token ?? randomUUID()) : null;
    await this.events.updateMany(filter, { $set: { owner, claimedUntil, claimToken, claimNonce } });
    const claimed = await this.events.find({ _id: { $in: [...eventIds] }, claimNonce }, { sort: { _id: 1 }, limit: eventIds.length }).toArray();
    return claimed.map((d) => d._id);
  }

  /**
   * The database server's time: `hello`'s localTime, the moment the server answered. The update that
   * compares a lease with it runs later, so the server's clock then reads at least this: a lease is
   * taken over only once it has certainly ended. (Corrected by half the round trip, as it once was,
   * it ran ahead whenever the answer waited in a busy server's queue, and could let a lease be taken
   * over before it ended.) A lease written from it ends no later than the one asked for. A server
   * that does not report it leaves this process's clock.
   */
  private async serverNow(): Promise<Date> {
    if (this.db.command === undefined) return new Date();
    const hello = await this.db.command({ hello: 1 });
    const localTime: unknown = hello.localTime;
    return localTime instanceof Date ? localTime : new Date();
  }

  async release(eventIds: readonly string[], token: string): Promise<void> {
    if (eventIds.length === 0) return;
    await this.events.updateMany({ _id: { $in: [...eventIds] }, owner: 'fast', status: 'pending', claimToken: token }, { $set: { owner: null, claimedUntil: null, claimToken: null } });
  }

  async markPublishedMany(results: readonly PublishResult[], token: string): Promise<MarkManyResult> {
    if (results.length === 0) return { marked: 0, positionTaken: [] };
    // One command for the batch: an update per event, sent together (as many single updates, they
    // queued behind each other in the server, and a batch of 250 took 7 s on SecantusDB, not 0.5 s).
    // Unordered: an event whose Kafka position is taken is not marked; the others are.
    const updates = results.map((r) => {
      const [filter, update] = publishedUpdate(r);
      return { updateOne: { filter: { ...filter, owner: 'fast' as const, claimToken: token }, update } };
    });
    try {
      return { marked: (await this.events.bulkWrite(updates, { ordered: false })).matchedCount, positionTaken: [] };
    } catch (err) {
      const failed = ([] as Array<{ index?: unknown }>).concat((err as { writeErrors?: Array<{ index?: unknown }> }).writeErrors ?? []);
      if (failed.length === 0 || !failed.every(isKafkaPositionTaken)) throw err;
      const positionTaken = failed.map((f) => results[Number(f.index)]).filter((r): r is PublishResult => r !== undefined);
      return { marked: (err as { result?: { matchedCount?: number } }).result?.matchedCount ?? results.length - positionTaken.length, positionTaken };
    }
  }

  async recordFailure(eventId: string, failure: { attempts: number; lastError: string }): Promise<void> {
    await this.events.updateOne({ _id: eventId }, { $max: { attempts: failure.attempts }, $set: { lastError: failure.lastError } });
  }

  async transition(eventId: string, change: StatusChange): Promise<boolean> {
    const update: UpdateFilter<OutboxDocument> =
      change.to === 'stuck'
        ? { $set: { status: 'stuck', lastError: change.lastError }, $max: { attempts: change.attempts } }
        : change.to === 'pending'
          ? { $set: { status: 'pending' } }
          : { $set: { status: change.to, resolution: change.resolution } };
    const { matchedCount } = await this.events.updateOne({ _id: eventId, status: change.from }, update);
    return matchedCount === 1;
  }

  async findPending(query: { beforeId: string; afterId?: string; limit: number; partitions?: readonly number[] }): Promise<OutboxEvent[]> {
    const idRange: { $lt: string; $gt?: string } = { $lt: query.beforeId };
    if (query.afterId !== undefined) idRange.$gt = query.afterId;
    const partitions = query.partitions === undefined ? {} : partitionMatch(query.partitions);
    const now = await this.serverNow();
    const docs = await this.events
      .find({ status: 'pending', _id: idRange, ...partitions, $nor: [{ owner: 'fast', claimedUntil: { $gt: now } }] }, { sort: { _id: 1 }, limit: query.limit })
      .toArray();
    return docs.map(toEvent);
  }

  async list(query: ListQuery): Promise<OutboxEvent[]> {
    const idRange: { $gt?: string; $lt?: string } = {};
    if (query.afterId !== undefined) idRange.$gt = query.afterId;
    if (query.beforeId !== undefined) idRange.$lt = query.beforeId;
    const filter: Filter<OutboxDocument> = {};
    if (query.status !== undefined) filter.status = query.status;
    if (query.type !== undefined) filter.type = query.type;
    if (Object.keys(idRange).length > 0) filter._id = idRange;
    const docs = await this.events.find(filter, { sort: { _id: 1 }, limit: query.limit }).toArray();
    return docs.map(toEvent);
  }

  async stats(): Promise<OutboxStats> {
    const counts: OutboxStats['counts'] = { pending: 0, published: 0, stuck: 0, compensated: 0, discarded: 0 };
    for (const status of Object.keys(counts) as Array<keyof typeof counts>) {
      counts[status] = await this.events.countDocuments({ status });
    }
    const [oldest] = await this.events.find({ status: 'pending' }, { sort: { _id: 1 }, limit: 1 }).toArray();
    return { counts, oldestPending: oldest ? { id: oldest._id, occurredAt: oldest.occurredAt } : null };
  }

  async purgePublished(before: Date, options: PurgeOptions = {}): Promise<number> {
    const batchSize = options.batchSize ?? DEFAULT_PURGE_BATCH;
    const filter = { status: 'published' as const, publishedAt: { $lt: before } };
    let deleted = 0;
    for (;;) {
      const ids = (await this.events.find(filter, { sort: { _id: 1 }, limit: batchSize }).toArray()).map((d) => d._id);
      if (ids.length === 0) return deleted;
      deleted += (await this.events.deleteMany({ ...filter, _id: { $in: ids } })).deletedCount;
      if (ids.length < batchSize) return deleted;
    }
  }

  openFeed(options: FeedOptions): ChangeFeed {
    return createChangeFeed((signal, gap) => this.feedBatches(options, signal, gap));
  }

  async close(): Promise<void> {
    // The caller owns the MongoClient.
  }

  async deleteCheckpoint(name: string): Promise<void> {
    await this.checkpoints.deleteOne({ _id: name });
  }

  private async *feedBatches(options: FeedOptions, signal: AbortSignal, gap: (reason: FeedGap) => void): AsyncGenerator<FeedBatch> {
    const names = options.partitions === undefined ? [options.name] : options.partitions.ids.map((p) => partitionCheckpointName(options.name, p));
    let start: FeedStart | undefined;
    if (options.partitions === undefined) {
      const saved = await this.checkpoints.findOne({ _id: options.name });
      start = saved === null ? undefined : { resumeToken: saved.resumeToken, ...(saved.since === undefined ? {} : { since: saved.since }) };
    } else {
      start = await this.partitionsStart(options.name, options.partitions.ids, gap);
    }
    if (start !== undefined && 'resumeToken' in start && !looksLikeResumeToken(start.resumeToken)) {
      // Not a resume token at all (a hand-edited or damaged document): dropped; the sweeper covers the gap.
      const problem = new OutboxError(OutboxErrorCode.checkpointCorrupt, `change stream checkpoint ${JSON.stringify(options.name)} holds no resume token: discarded, starting from now`, {
        context: { feed: options.name },
      });
      this.logger.error(problem.message, { error: problem });
      await this.checkpoints.deleteMany({ _id: { $in: names } });
      start = undefined;
      gap('checkpoint-unusable');
    } else if (start === undefined) {
      this.logger.info('change stream has no resume token: starting from now, the sweeper finds older pending events', {
        feed: options.name,
      });
      gap('no-checkpoint');
    }
    /** The cluster time of the last event read (see CheckpointDocument.since). */
    let since: Timestamp | undefined = start === undefined ? undefined : 'startAt' in start ? start.startAt : start.since;
    let stream = this.openStream(options, start);
    let recoveredOnce = false;
    try {
      while (!signal.aborted) {
        const events: OutboxEvent[] = [];
        const deadline = Date.now() + options.maxWaitMs;
        try {
          // One batch: what the stream holds now, up to batchSize; tryNext() is null after an empty getMore.
          while (events.length < options.batchSize && !signal.aborted) {
            const change = await stream.tryNext();
            if (change === null) break;
            recoveredOnce = false;
            if (change.operationType === 'insert' && change.fullDocument) {
              events.push(toEvent(change.fullDocument as OutboxDocument));
            }
            if (isTimestamp(change.clusterTime)) since = change.clusterTime;
            if (Date.now() >= deadline) break;
          }
        } catch (err) {
          if (!isPositionLost(err) || recoveredOnce) throw err;
          // The saved position is gone: drop it, start from now once, and let the sweeper cover the gap.
          recoveredOnce = true;
          this.logger.warn('change stream position lost: reopening from now; the sweeper covers the gap', {
            feed: options.name,
            error: err instanceof Error ? err.message : String(err),
          });
          // The feed's own positions: the partitions' when it reads partitions, not the group's.
          await this.checkpoints.deleteMany({ _id: { $in: names } });
          await stream.close();
          stream = this.openStream(options, undefined);
          since = undefined;
          gap('history-lost');
          continue;
        }
        const resumeToken = stream.resumeToken;
        const position: Partial<CheckpointDocument> = { resumeToken, ...(since === undefined ? {} : { since }) };
        yield {
          events,
          checkpoint: async () => {
            if (resumeToken === undefined || resumeToken === null) return;
            if (options.partitions !== undefined) return this.savePartitionCheckpoints(options.name, options.partitions, position);
            await this.checkpoints.updateOne({ _id: options.name }, { $set: { ...position, updatedAt: new Date() } }, { upsert: true });
          },
        };
      }
    } finally {
      await stream.close();
    }
  }

  private openStream(options: FeedOptions, start: FeedStart | undefined): ChangeStreamLike {
    const watchOptions: ChangeStreamOptions = { maxAwaitTimeMS: options.maxWaitMs, batchSize: options.batchSize };
    if (start !== undefined && 'startAt' in start) watchOptions.startAtOperationTime = start.startAt;
    else if (start !== undefined) watchOptions.startAfter = start.resumeToken;
    const partitions = options.partitions === undefined ? {} : prefixed('fullDocument.', partitionMatch(options.partitions.ids));
    return this.events.watch([{ $match: { operationType: 'insert', ...partitions } }], watchOptions);
  }

  /**
   * Where a partitioned feed starts. When its partitions' positions are one token, after it. When they
   * differ (partitions handed over from relays that had read to different points), at the earliest
   * cluster time they had read to (`since`): every event of every partition after it comes again (its
   * start is refused as a duplicate, its fast claim fails), and none is skipped. Only positions saved
   * by an older release, without `since`, cannot be ordered (resume tokens are opaque; SecantusDB's
   * do not even sort by time): then it starts after the one saved longest ago and reports a gap, and
   * the sweeper delivers what that start skipped. A partition never saved takes the group's
   * unpartitioned position, where a relay that read every partition left off.
   */
  private async partitionsStart(name: string, partitions: readonly number[], gap: (reason: FeedGap) => void): Promise<FeedStart | undefined> {
    const names = partitions.map((p) => partitionCheckpointName(name, p));
    const saved = await this.checkpoints.find({ _id: { $in: [...names, name] } }, { sort: { updatedAt: 1 }, limit: names.length + 1 }).toArray();
    const group = saved.find((c) => c._id === name);
    const starts = names.map((n) => saved.find((c) => c._id === n) ?? group);
    const known = starts.filter((c): c is CheckpointDocument => c !== undefined);
    if (known.length === 0) return undefined;
    if (known.length < starts.length) gap('no-checkpoint');
    const earliest = (times: Timestamp[]): Timestamp => times.reduce((a, b) => (a.compare(b) <= 0 ? a : b));
    if (new Set(known.map((c) => JSON.stringify(c.resumeToken))).size === 1) {
      const times = known.map((c) => c.since).filter((t): t is Timestamp => t !== undefined);
      return { resumeToken: known[0]?.resumeToken, ...(times.length === known.length ? { since: earliest(times) } : {}) };
    }
    if (known.every((c) => c.since !== undefined)) return { startAt: earliest(known.map((c) => c.since as Timestamp)) };
    gap('partitions-merged');
    const oldest = known.reduce((a, b) => (a.updatedAt <= b.updatedAt ? a : b));
    return { resumeToken: oldest.resumeToken };
  }

  /**
   * Saves the token for each partition, only while the member holds all their leases (LEASE_LOST
   * otherwise, saving nothing). The lease is checked, then the positions written: a lease that runs
   * out between the two lets one last position through (the new owner's feed started from an older one).
   */
  private async savePartitionCheckpoints(name: string, partitions: { ids: readonly number[]; member: string }, position: Partial<CheckpointDocument>): Promise<void> {
    const now = await this.serverNow();
    const held = await this.leases.find({ group: name, owner: partitions.member, expiresAt: { $gt: now }, partition: { $in: [...partitions.ids] } }, { sort: { partition: 1 }, limit: partitions.ids.length }).toArray();
    const lost = partitions.ids.filter((p) => !held.some((l) => l.partition === p));
    if (lost.length > 0) throw leaseLostError(name, partitions.member, lost);
    const names = partitions.ids.map((p) => partitionCheckpointName(name, p));
    const { matchedCount } = await this.checkpoints.updateMany({ _id: { $in: names } }, { $set: { ...position, updatedAt: now } });
    if (matchedCount < names.length) {
      for (const n of names) await this.checkpoints.updateOne({ _id: n }, { $set: { ...position, updatedAt: now } }, { upsert: true });
    }
  }
}

/** A filter of the events in `partitions`; events written before partitions came have none and count as partition 0. */
function partitionMatch(partitions: readonly number[]): { partition: { $in: Array<number | null> } } {
  return { partition: { $in: partitions.includes(0) ? [...partitions, null] : [...partitions] } };
}

/** The same filter on a change event's document. */
function prefixed(prefix: string, filter: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(filter).map(([k, v]) => [`${prefix}${k}`, v]));
}

/** A BSON Timestamp (a change event's cluster time), told by its BSON type: the adapter loads no driver code of its own. */
function isTimestamp(value: unknown): value is Timestamp {
  return typeof value === 'object' && value !== null && (value as { _bsontype?: unknown })._bsontype === 'Timestamp';
}

function isPositionLost(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && POSITION_LOST_CODES.has(code);
}

/** The filter and update that mark one event published: only a `pending` (or `stuck`) one. */
function publishedUpdate(result: PublishResult): [Filter<OutboxDocument>, UpdateFilter<OutboxDocument>] {
  return [
    { _id: result.eventId, status: { $in: ['pending', 'stuck'] } },
    { $set: { status: 'published', publishedAt: result.publishedAt, kafka: { partition: result.partition, offset: result.offset }, attempts: result.attempts, lastError: null } },
  ];
}

/** A duplicate key on the Kafka position index: another event is recorded at that position (see markPublished). */
function isKafkaPositionTaken(err: unknown): boolean {
  const { code, message, errmsg } = err as { code?: unknown; message?: unknown; errmsg?: unknown };
  return code === 11000 && String(message ?? errmsg).includes('outbox_kafka_position');
}

function toEvent(doc: OutboxDocument): OutboxEvent {
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
