import {
  createChangeFeed,
  type ChangeFeed,
  type EventOwner,
  type FeedOptions,
  type ListQuery,
  type MarkManyResult,
  type MarkOptions,
  type MarkResult,
  type OutboxEvent,
  type OutboxStats,
  type OutboxStore,
  type PartitionStatus,
  type PublishResult,
  type PurgeOptions,
  type StatusChange,
} from '../../outbox';
import * as admin from './admin';
import * as claims from './claims';
import { mongoStoreContext, type MongoStoreContext, type MongoStoreOptions, type MongoTx } from './context';
import * as events from './events';
import * as feed from './feed';
import * as partitions from './partitions';
import * as schema from './schema';

/**
 * The MongoDB adapter (the product's target). Writes go into the caller's transaction
 * (`session.withTransaction`); the feed is a change stream on inserts, opened with `startAfter`
 * from the saved resume token. The token is saved by `checkpoint()`, which the relay calls only
 * after Temporal accepted the starts; empty batches save the driver's post-batch resume token too,
 * so a quiet outbox never lets its token fall off the oplog.
 *
 * Each concern lives in a module of this folder (schema, events, claims, feed, partitions, admin);
 * the class puts them behind the store's port.
 */
export class MongoOutboxStore implements OutboxStore<MongoTx> {
  readonly kind = 'mongodb';
  private readonly t: MongoStoreContext;

  constructor(options: MongoStoreOptions) {
    this.t = mongoStoreContext(options);
  }

  /** Creates the collections (a transaction is no place to create one: mongod before 4.4 refuses) and indexes. */
  setup(): Promise<string[]> {
    return schema.setup(this.t);
  }

  checkSetUp(): Promise<void> {
    return schema.checkSetUp(this.t);
  }

  insert(event: OutboxEvent, tx: MongoTx): Promise<number | null> {
    return events.insert(this.t, event, tx);
  }

  partitionCount(): Promise<number> {
    return partitions.partitionCount(this.t);
  }

  heartbeat(group: string, member: string, ttlMs: number): Promise<string[]> {
    return partitions.heartbeat(this.t, group, member, ttlMs);
  }

  acquire(group: string, member: string, ids: readonly number[], ttlMs: number): Promise<number[]> {
    return partitions.acquire(this.t, group, member, ids, ttlMs);
  }

  releaseLeases(group: string, member: string, ids: readonly number[], leave = false): Promise<void> {
    return partitions.releaseLeases(this.t, group, member, ids, leave);
  }

  partitionStatus(group: string): Promise<PartitionStatus[]> {
    return partitions.partitionStatus(this.t, group);
  }

  nextOpenSequence(topic: string, key: string): Promise<number | null> {
    return events.nextOpenSequence(this.t, topic, key);
  }

  get(eventId: string): Promise<OutboxEvent | null> {
    return events.get(this.t, eventId);
  }

  markPublished(result: PublishResult, options: MarkOptions = {}): Promise<MarkResult> {
    return events.markPublished(this.t, result, options);
  }

  claim(eventIds: readonly string[], owner: EventOwner, leaseMs = 60_000, token?: string): Promise<string[]> {
    return claims.claim(this.t, eventIds, owner, leaseMs, token);
  }

  release(eventIds: readonly string[], token: string): Promise<void> {
    return claims.release(this.t, eventIds, token);
  }

  markPublishedMany(results: readonly PublishResult[], token: string): Promise<MarkManyResult> {
    return claims.markPublishedMany(this.t, results, token);
  }

  recordFailure(eventId: string, failure: { attempts: number; lastError: string }): Promise<void> {
    return events.recordFailure(this.t, eventId, failure);
  }

  transition(eventId: string, change: StatusChange): Promise<boolean> {
    return events.transition(this.t, eventId, change);
  }

  findPending(query: { beforeId: string; afterId?: string; limit: number; partitions?: readonly number[] }): Promise<OutboxEvent[]> {
    return admin.findPending(this.t, query);
  }

  list(query: ListQuery): Promise<OutboxEvent[]> {
    return admin.list(this.t, query);
  }

  stats(): Promise<OutboxStats> {
    return admin.stats(this.t);
  }

  purgePublished(before: Date, options: PurgeOptions = {}): Promise<number> {
    return admin.purgePublished(this.t, before, options);
  }

  openFeed(options: FeedOptions): ChangeFeed {
    return createChangeFeed((signal, gap) => feed.feedBatches(this.t, options, signal, gap));
  }

  async close(): Promise<void> {
    // The caller owns the MongoClient.
  }

  /** Deletes the feed's saved position (operators' "reset"; also what the tests use to lose it). */
  deleteCheckpoint(name: string): Promise<void> {
    return feed.deleteCheckpoint(this.t, name);
  }
}
