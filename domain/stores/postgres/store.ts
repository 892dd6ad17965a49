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
import type { PgTx } from './connection';
import { pgStoreContext, type PgStoreContext, type PostgresStoreOptions } from './context';
import * as events from './events';
import * as feed from './feed';
import * as partitions from './partitions';
import * as schema from './schema';

/**
 * The PostgreSQL adapter. Events are rows of `<schema>.outbox_events`, written in the caller's
 * transaction. The change feed is a durable cursor over `(txid, id)`, where `txid` is the writing
 * transaction's id (`pg_current_xact_id()`): the feed only reads rows whose transaction id is below
 * the oldest transaction still running (`pg_snapshot_xmin`), so a transaction that commits late can
 * never slip behind a saved position. LISTEN/NOTIFY (sent by an insert trigger, delivered at commit)
 * wakes the feed; it also polls every `maxWaitMs`.
 *
 * Each concern lives in a module of this folder (schema, events, claims, feed, partitions, admin);
 * the class puts them behind the store's port.
 */
export class PostgresOutboxStore implements OutboxStore<PgTx> {
  readonly kind = 'postgres';
  readonly schema: string;
  readonly channel: string;
  private readonly t: PgStoreContext;

  constructor(options: PostgresStoreOptions) {
    this.t = pgStoreContext(options);
    this.schema = this.t.schema;
    this.channel = this.t.channel;
  }

  /** See `schema.setup`: creates or updates what is missing, safe on a live database; returns what it did. */
  setup(): Promise<string[]> {
    return schema.setup(this.t);
  }

  checkSetUp(): Promise<void> {
    return schema.checkSetUp(this.t);
  }

  insert(event: OutboxEvent, tx: PgTx): Promise<number | null> {
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
    if (this.t.ownsPool) await this.t.pool.end();
  }

  /** Deletes the feed's saved position (operators' "reset"; also what the tests use to lose it). */
  deleteCheckpoint(name: string): Promise<void> {
    return feed.deleteCheckpoint(this.t, name);
  }
}
