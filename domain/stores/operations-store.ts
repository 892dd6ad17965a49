/**
 * What both adapters share: the store's port as operations over an adapter's own context (its
 * tables or collections, its pool or database), and the class that puts them behind `OutboxStore`.
 * Each adapter's folder implements the operations by concern (schema, events, claims, feed,
 * partitions, admin); its store class only builds the context.
 */
import {
  createChangeFeed,
  type ChangeFeed,
  type EventOwner,
  type FeedBatch,
  type FeedGap,
  type FeedOptions,
  type ListQuery,
  type MarkManyResult,
  type MarkOptions,
  type MarkResult,
  type OutboxEvent,
  type OutboxStats,
  type StatsOptions,
  type OutboxStore,
  type PartitionStatus,
  type PublishResult,
  type PurgeOptions,
  type StatusChange,
  type WorkflowClaim,
} from '../outbox';

/**
 * The published count of `stats({ published: 'estimated' })`: `total`, the store's own count of its
 * events (PostgreSQL's table statistics, MongoDB's collection metadata), less every other status,
 * counted exactly.
 */
export function publishedEstimate(counts: OutboxStats['counts'], total: number): number {
  const others = Object.entries(counts).reduce((sum, [status, n]) => (status === 'published' ? sum : sum + n), 0);
  return Math.max(0, total - others);
}

/** Every operation of the port, each taking the adapter's context first (see `OutboxStore` for what each does). */
export interface StoreOperations<Ctx, Tx> {
  setup(t: Ctx): Promise<string[]>;
  checkSetUp(t: Ctx): Promise<void>;
  insert(t: Ctx, event: OutboxEvent, tx: Tx): Promise<number | null>;
  partitionCount(t: Ctx): Promise<number>;
  heartbeat(t: Ctx, group: string, member: string, ttlMs: number): Promise<string[]>;
  acquire(t: Ctx, group: string, member: string, partitions: readonly number[], ttlMs: number): Promise<number[]>;
  releaseLeases(t: Ctx, group: string, member: string, partitions: readonly number[], leave?: boolean): Promise<void>;
  partitionStatus(t: Ctx, group: string): Promise<PartitionStatus[]>;
  nextOpenSequence(t: Ctx, topic: string, key: string): Promise<number | null>;
  openEventsOfKey(t: Ctx, topic: string, key: string, afterSequence: number, limit: number): Promise<OutboxEvent[]>;
  get(t: Ctx, eventId: string): Promise<OutboxEvent | null>;
  markPublished(t: Ctx, result: PublishResult, options?: MarkOptions): Promise<MarkResult>;
  claim(t: Ctx, eventIds: readonly string[], owner: EventOwner, leaseMs?: number, token?: string): Promise<string[]>;
  claimForWorkflow(t: Ctx, eventId: string): Promise<WorkflowClaim>;
  release(t: Ctx, eventIds: readonly string[], token: string): Promise<void>;
  markPublishedMany(t: Ctx, results: readonly PublishResult[], token: string): Promise<MarkManyResult>;
  recordFailure(t: Ctx, eventId: string, failure: { attempts: number; lastError: string }): Promise<void>;
  transition(t: Ctx, eventId: string, change: StatusChange): Promise<boolean>;
  findPending(t: Ctx, query: { beforeId: string; afterId?: string; limit: number; partitions?: readonly number[] }): Promise<OutboxEvent[]>;
  list(t: Ctx, query: ListQuery): Promise<OutboxEvent[]>;
  stats(t: Ctx, options?: StatsOptions): Promise<OutboxStats>;
  purgePublished(t: Ctx, before: Date, options?: PurgeOptions): Promise<number>;
  /** The change feed's batches, for `openFeed`. */
  feedBatches(t: Ctx, options: FeedOptions, signal: AbortSignal, gap: (reason: FeedGap) => void): AsyncIterable<FeedBatch>;
  deleteCheckpoint(t: Ctx, name: string): Promise<void>;
  close(t: Ctx): Promise<void>;
}

/** An adapter's operations behind the store's port. */
export class OperationsStore<Ctx, Tx> implements OutboxStore<Tx> {
  constructor(
    readonly kind: string,
    protected readonly t: Ctx,
    private readonly ops: StoreOperations<Ctx, Tx>,
  ) {}

  setup(): Promise<string[]> {
    return this.ops.setup(this.t);
  }

  checkSetUp(): Promise<void> {
    return this.ops.checkSetUp(this.t);
  }

  insert(event: OutboxEvent, tx: Tx): Promise<number | null> {
    return this.ops.insert(this.t, event, tx);
  }

  partitionCount(): Promise<number> {
    return this.ops.partitionCount(this.t);
  }

  heartbeat(group: string, member: string, ttlMs: number): Promise<string[]> {
    return this.ops.heartbeat(this.t, group, member, ttlMs);
  }

  acquire(group: string, member: string, partitions: readonly number[], ttlMs: number): Promise<number[]> {
    return this.ops.acquire(this.t, group, member, partitions, ttlMs);
  }

  releaseLeases(group: string, member: string, partitions: readonly number[], leave = false): Promise<void> {
    return this.ops.releaseLeases(this.t, group, member, partitions, leave);
  }

  partitionStatus(group: string): Promise<PartitionStatus[]> {
    return this.ops.partitionStatus(this.t, group);
  }

  nextOpenSequence(topic: string, key: string): Promise<number | null> {
    return this.ops.nextOpenSequence(this.t, topic, key);
  }

  openEventsOfKey(topic: string, key: string, afterSequence: number, limit: number): Promise<OutboxEvent[]> {
    return this.ops.openEventsOfKey(this.t, topic, key, afterSequence, limit);
  }

  get(eventId: string): Promise<OutboxEvent | null> {
    return this.ops.get(this.t, eventId);
  }

  markPublished(result: PublishResult, options: MarkOptions = {}): Promise<MarkResult> {
    return this.ops.markPublished(this.t, result, options);
  }

  claim(eventIds: readonly string[], owner: EventOwner, leaseMs = 60_000, token?: string): Promise<string[]> {
    return this.ops.claim(this.t, eventIds, owner, leaseMs, token);
  }

  claimForWorkflow(eventId: string): Promise<WorkflowClaim> {
    return this.ops.claimForWorkflow(this.t, eventId);
  }

  release(eventIds: readonly string[], token: string): Promise<void> {
    return this.ops.release(this.t, eventIds, token);
  }

  markPublishedMany(results: readonly PublishResult[], token: string): Promise<MarkManyResult> {
    return this.ops.markPublishedMany(this.t, results, token);
  }

  recordFailure(eventId: string, failure: { attempts: number; lastError: string }): Promise<void> {
    return this.ops.recordFailure(this.t, eventId, failure);
  }

  transition(eventId: string, change: StatusChange): Promise<boolean> {
    return this.ops.transition(this.t, eventId, change);
  }

  findPending(query: { beforeId: string; afterId?: string; limit: number; partitions?: readonly number[] }): Promise<OutboxEvent[]> {
    return this.ops.findPending(this.t, query);
  }

  list(query: ListQuery): Promise<OutboxEvent[]> {
    return this.ops.list(this.t, query);
  }

  stats(options?: StatsOptions): Promise<OutboxStats> {
    return this.ops.stats(this.t, options);
  }

  purgePublished(before: Date, options: PurgeOptions = {}): Promise<number> {
    return this.ops.purgePublished(this.t, before, options);
  }

  openFeed(options: FeedOptions): ChangeFeed {
    return createChangeFeed((signal, gap) => this.ops.feedBatches(this.t, options, signal, gap));
  }

  close(): Promise<void> {
    return this.ops.close(this.t);
  }

  /** Deletes the feed's saved position (operators' "reset"; also what the tests use to lose it). */
  deleteCheckpoint(name: string): Promise<void> {
    return this.ops.deleteCheckpoint(this.t, name);
  }
}
