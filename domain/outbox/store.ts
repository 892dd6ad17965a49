import type { EventResolution, OutboxEvent, OutboxStatus, PublishResult } from './event';
import type { PartitionLeases } from './partitions';

/**
 * Who publishes a pending event: the relay's fast path (`fast`, for a lease) or its Temporal workflow
 * (`workflow`, for good). Claims are conditional updates in the store, so two owners never publish
 * the same event at once.
 */
export type EventOwner = 'fast' | 'workflow';

/** The outcome of a conditional status change in the store. */
export type MarkResult = 'marked' | 'already-published' | 'not-found';

/** What `markPublishedMany` did: how many it marked, and which were not marked because another event holds their Kafka position. */
export interface MarkManyResult {
  marked: number;
  /** Not marked: another event is recorded at their topic, partition and offset (see `markPublished`'s `supersede`). */
  positionTaken: PublishResult[];
}

export interface MarkOptions {
  /**
   * The caller read the record at this Kafka position and it is this event's: Kafka reused the position
   * (a topic deleted and created again, a log truncated after an unclean leader election), so any other
   * event recorded there is moved aside first (its `kafka` becomes null, its `lastError` says where it
   * was and by whom it was superseded; it stays `published`). Without it such a collision fails with
   * KAFKA_POSITION_TAKEN. @default false
   */
  supersede?: boolean;
}

/**
 * The store's port, by role: each caller asks for what it uses. `OutboxStore` is all of them, what
 * every adapter implements (MongoDB, PostgreSQL). `Tx` is the adapter's handle of the caller's open
 * transaction: `{ session }` for MongoDB, `{ client }` for PostgreSQL. The relay, the worker's
 * activities and the CLI only ever see these interfaces, never a driver.
 */

/** What `outbox.add()` needs: the insert in the caller's transaction. */
export interface OutboxWriterStore<Tx> {
  /** `mongodb` or `postgres`: for logs and the contract test's names. */
  readonly kind: string;
  /**
   * Inserts a new event inside the caller's transaction. When `event.sequence` is 0 (per-key
   * ordering), assigns the next sequence of its topic and key in that transaction and returns it
   * (transactions writing the same key wait on each other, so sequences follow commit order).
   */
  insert(event: OutboxEvent, tx: Tx): Promise<number | null>;
}

/** One event at a time: what the worker's activities need to publish, record and escalate an event. */
export interface OutboxEventStore {
  /** The event, or null. */
  get(eventId: string): Promise<OutboxEvent | null>;
  /**
   * Records where Kafka stored the event: only a `pending` (or `stuck`) event becomes `published`.
   * Another event recorded at the same position fails it with KAFKA_POSITION_TAKEN, unless `supersede`.
   */
  markPublished(result: PublishResult, options?: MarkOptions): Promise<MarkResult>;
  /**
   * Claims events for an owner; returns the ids it got. `fast`: pending events nobody owns, or whose
   * fast lease (`leaseMs`) ran out, under the claimant's `token` (only it may release them or record
   * their publication with `markPublishedMany`). `workflow`: pending or stuck events not under a live
   * fast lease (a workflow keeps its claim; a fast claim is handed over by `release` or by its lease ending).
   */
  claim(eventIds: readonly string[], owner: EventOwner, leaseMs?: number, token?: string): Promise<string[]>;
  /**
   * A workflow's claim of one event (what `claim([eventId], 'workflow')` would get) that answers
   * with the event as it stands after it, so a publish attempt reads nothing else: `claimed` and the
   * event; or not claimed and the event as it is (published, resolved, under a live fast lease), or
   * null when there is no such event. One request on PostgreSQL; on MongoDB one when it is claimed,
   * and a read more when it is not.
   */
  claimForWorkflow(eventId: string): Promise<WorkflowClaim>;
  /** Records a failed publish attempt (attempt number and error) without changing the status. */
  recordFailure(eventId: string, failure: { attempts: number; lastError: string }): Promise<void>;
  /**
   * Conditional status change for escalation: `pending` → `stuck` (retries exhausted or a failure
   * that cannot pass), `stuck` → `pending` (operator retry), `stuck` → `compensated` | `discarded`
   * (with the resolution). True when the event was in `from` and changed.
   */
  transition(eventId: string, change: StatusChange): Promise<boolean>;
  /** The lowest sequence of a key whose event is not yet published or resolved (null: none). */
  nextOpenSequence(topic: string, key: string): Promise<number | null>;
  /**
   * A key's events not yet published or resolved whose sequence is above `afterSequence`, lowest
   * first, at most `limit` (a key's sequencer reads ahead with it).
   */
  openEventsOfKey(topic: string, key: string, afterSequence: number, limit: number): Promise<OutboxEvent[]>;
}

/**
 * What the relay needs: the change feed, the sweeper's pending events, the fast path's claims and
 * its marks in batches, the partition leases of a relay group, and the event operations of the fast path.
 */
export interface OutboxRelayStore extends PartitionLeases, Pick<OutboxEventStore, 'claim' | 'markPublished' | 'nextOpenSequence' | 'transition'> {
  /** A change feed of inserted events, resuming from the checkpoint saved under `name`. */
  openFeed(options: FeedOptions): ChangeFeed;
  /**
   * Up to `limit` events still `pending` whose id is below `beforeId` (ids are time-ordered, so this
   * is "created before"), oldest first, after `afterId` when given (to page through a backlog), of
   * the given `partitions` only when given. An event under a live fast claim is left out: its
   * claimant is publishing it, and once the claim lapses (or is released) it is found again.
   */
  findPending(query: { beforeId: string; afterId?: string; limit: number; partitions?: readonly number[] }): Promise<OutboxEvent[]>;
  /**
   * Gives up the fast claims `token` holds on events still pending (their publication failed or never
   * happened): a workflow or another relay takes them. A claim that lapsed and was taken by another
   * claimant is not touched (fencing: a relay late after its lease cannot clear someone else's claim).
   */
  release(eventIds: readonly string[], token: string): Promise<void>;
  /**
   * `markPublished` for many events at once, each only while `token` holds its fast claim (a relay
   * whose claim lapsed and was taken over records nothing; the new owner publishes). An event whose
   * Kafka position another event holds is not marked and comes back in `positionTaken`; the others
   * are marked all the same.
   */
  markPublishedMany(results: readonly PublishResult[], token: string): Promise<MarkManyResult>;
}

/** What the CLI and an operator need: set-up, listing, counts, retention, and a stuck event's fate. */
export interface OutboxAdminStore extends Pick<PartitionLeases, 'partitionStatus'>, Pick<OutboxEventStore, 'get' | 'transition'> {
  /**
   * Creates or updates the collections/tables and indexes, doing only what is missing (idempotent,
   * safe on a live database). Resolves with what it did, one line per change (none: all was there).
   */
  setup(): Promise<string[]>;
  /** Events by status and type, oldest first, ids in (afterId, beforeId). */
  list(query: ListQuery): Promise<OutboxEvent[]>;
  /** Counts by status and the oldest pending event (for `status`, lag and alerts). */
  stats(options?: StatsOptions): Promise<OutboxStats>;
  /** Deletes `published` events published before `before` (retention); returns how many. */
  purgePublished(before: Date, options?: PurgeOptions): Promise<number>;
}

/** The whole port: every role, plus what each process does at its start and end. */
export interface OutboxStore<Tx> extends OutboxWriterStore<Tx>, OutboxEventStore, OutboxRelayStore, OutboxAdminStore {
  /**
   * Throws STORE_NOT_SET_UP, naming what is missing, when `setup()` has not run on this database
   * (the relay and the worker check it at start, instead of failing on every read).
   */
  checkSetUp(): Promise<void>;
  /** Releases the store's own connections (not the caller's client). */
  close(): Promise<void>;
}

/** Events a purge deletes per statement. */
export const DEFAULT_PURGE_BATCH = 1000;

export interface PurgeOptions {
  /**
   * Events deleted per statement: each batch commits on its own, so a large purge never holds one
   * long transaction (on PostgreSQL that would hold the change feed back until it ends). @default 1000
   */
  batchSize?: number;
}

export interface ListQuery {
  status?: OutboxStatus;
  type?: string;
  afterId?: string;
  beforeId?: string;
  limit: number;
}

export interface StatsOptions {
  /**
   * How the published events are counted. `exact` reads them all (index entries or rows), and an
   * outbox that keeps months of them holds millions. `estimated` takes the store's own count of the
   * table or collection (PostgreSQL's live rows in its statistics, MongoDB's collection count) less
   * the other statuses, which are still counted exactly from their indexes: what a metrics scrape
   * asks every few seconds. @default 'exact'
   */
  published?: 'exact' | 'estimated';
}

export interface OutboxStats {
  /** By status; `published` is an estimate when `publishedEstimated` says so. */
  counts: Record<OutboxStatus, number>;
  /** The published count is the store's estimate (`StatsOptions.published`). */
  publishedEstimated?: boolean;
  /** The oldest event still pending, if any. */
  oldestPending: { id: string; occurredAt: Date } | null;
}

/** What `claimForWorkflow` got: the event as it stands (null: no such event), and whether the workflow now owns it. */
export interface WorkflowClaim {
  claimed: boolean;
  event: OutboxEvent | null;
}

export type StatusChange =
  | { from: 'pending'; to: 'stuck'; attempts: number; lastError: string }
  | { from: 'stuck'; to: 'pending' }
  | { from: 'stuck'; to: 'compensated' | 'discarded'; resolution: EventResolution };

export interface FeedOptions {
  /** Checkpoint name: relays sharing a name share one position. */
  name: string;
  /** Most events in one batch. */
  batchSize: number;
  /** Longest wait for new events before an empty batch (which still saves the position). */
  maxWaitMs: number;
  /**
   * The fast path's claim, made in the same statement as the read where the store can (PostgreSQL);
   * a store that cannot leaves `FeedBatch.claimed` unset and the relay claims after the read.
   */
  claim?: FeedClaim;
  /**
   * Partitioned reading (issue 17): only the events of `ids`, each partition's position saved under
   * its own checkpoint (`partitionCheckpointName(name, p)`), and only while `member` holds its lease in
   * the group `name`. The feed starts from the oldest of the partitions' positions.
   */
  partitions?: FeedPartitions;
}

export interface FeedPartitions {
  ids: readonly number[];
  member: string;
}

/** Which events a feed claims for the fast path as it reads them (see `OutboxStore.claim`, owner `fast`). */
export interface FeedClaim {
  /** An event is claimed when its topic or its type is listed (and it is pending and nobody's). */
  topics: readonly string[];
  types: readonly string[];
  leaseMs: number;
  /** The claimant's token (the relay's fast path). */
  token: string;
}

/** Events claimed for the fast path as they were read, and when: the lease runs from `at`. */
export interface FeedClaimed {
  ids: ReadonlySet<string>;
  /** `Date.now()` before the claim was sent. */
  at: number;
  /** The token the claims were made under (see `OutboxStore.claim`). */
  token: string;
}

/**
 * One batch of the feed; `checkpoint()` saves the position after it, to resume from there. Saving a
 * batch's position saves every earlier batch's too, so a caller may save only the last of several
 * (an empty one included), in the order they were read.
 */
export interface FeedBatch {
  events: OutboxEvent[];
  checkpoint(): Promise<void>;
  /** Set when the feed claimed the batch's fast-path events (FeedOptions.claim). */
  claimed?: FeedClaimed;
}

/**
 * Reasons the feed may have skipped events, which the relay answers with a sweep. `partitions-merged`:
 * a partitioned feed took partitions whose positions it cannot order (MongoDB's resume tokens are
 * opaque) and started from one of them.
 */
export type FeedGap = 'no-checkpoint' | 'history-lost' | 'checkpoint-unusable' | 'partitions-merged';

export interface ChangeFeed {
  /** Batches until `signal` aborts. Empty batches come at least every `maxWaitMs`. */
  batches(signal: AbortSignal): AsyncIterable<FeedBatch>;
  /** Called when the feed started from "now" or lost its position: some events may only be found by a sweep. */
  onGap(listener: (reason: FeedGap) => void): void;
}

/** A ChangeFeed over an adapter's batch generator, with the gap listeners kept in one place. */
export function createChangeFeed(
  batches: (signal: AbortSignal, gap: (reason: FeedGap) => void) => AsyncIterable<FeedBatch>,
): ChangeFeed {
  const listeners: Array<(reason: FeedGap) => void> = [];
  return {
    onGap: (listener) => {
      listeners.push(listener);
    },
    batches: (signal) => batches(signal, (reason) => listeners.forEach((l) => l(reason))),
  };
}
