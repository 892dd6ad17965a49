/**
 * The change feed: a change stream on inserts, reopened with `startAfter` from the saved resume
 * token (or at the earliest cluster time of its partitions' positions), its checkpoints, and what
 * it does when the server lost the position.
 */
import type { ChangeStreamOptions, Timestamp } from 'mongodb';
import { leaseLostError, OutboxError, OutboxErrorCode, partitionCheckpointName, type FeedBatch, type FeedGap, type FeedOptions, type OutboxEvent } from '../../outbox';
import {
  isPositionLost,
  isTimestamp,
  looksLikeResumeToken,
  partitionMatch,
  prefixed,
  serverNow,
  toEvent,
  type ChangeStreamLike,
  type CheckpointDocument,
  type FeedStart,
  type MongoStoreContext,
  type OutboxDocument,
} from './context';

export async function deleteCheckpoint(t: MongoStoreContext, name: string): Promise<void> {
  await t.checkpoints.deleteOne({ _id: name });
}

export async function* feedBatches(t: MongoStoreContext, options: FeedOptions, signal: AbortSignal, gap: (reason: FeedGap) => void): AsyncGenerator<FeedBatch> {
  const names = options.partitions === undefined ? [options.name] : options.partitions.ids.map((p) => partitionCheckpointName(options.name, p));
  const start = await feedStart(t, options, names, gap);
  /** The cluster time of the last event read (see CheckpointDocument.since). */
  let since: Timestamp | undefined = start === undefined ? undefined : 'startAt' in start ? start.startAt : start.since;
  let stream = openStream(t, options, start);
  let recoveredOnce = false;
  try {
    while (!signal.aborted) {
      const events: OutboxEvent[] = [];
      const deadline = Date.now() + options.maxWaitMs;
      try {
        // One batch: what the stream holds now, up to batchSize; tryNext() is null after an empty getMore.
        // mongod's getMore waits maxAwaitTimeMS for a matching change; SecantusDB's returns empty on
        // any write to the collection (the claims and marks of every event), so with nothing read yet
        // it asks again until the wait is over: one empty batch per maxWaitMs on either server, not
        // one (and its checkpoint) per write.
        while (events.length < options.batchSize && !signal.aborted) {
          // A batch with events ends with what the server sent: one more getMore would wait
          // maxAwaitTimeMS for a next change, holding back the ones read.
          if (events.length > 0 && stream.bufferedCount() === 0) break;
          const change = await stream.tryNext();
          if (change === null && events.length === 0 && Date.now() < deadline) continue;
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
        t.logger.warn('change stream position lost: reopening from now; the sweeper covers the gap', {
          feed: options.name,
          error: err instanceof Error ? err.message : String(err),
        });
        // The feed's own positions: the partitions' when it reads partitions, not the group's.
        await t.checkpoints.deleteMany({ _id: { $in: names } });
        await stream.close();
        stream = openStream(t, options, undefined);
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
          if (options.partitions !== undefined) return savePartitionCheckpoints(t, options.name, options.partitions, position);
          await t.checkpoints.updateOne({ _id: options.name }, { $set: { ...position, updatedAt: new Date() } }, { upsert: true });
        },
      };
    }
  } finally {
    await stream.close();
  }
}

/**
 * Where the feed starts: its saved resume token (or its partitions' earliest position); from now,
 * reporting the gap, when there is none or what is saved is no resume token.
 */
async function feedStart(t: MongoStoreContext, options: FeedOptions, names: readonly string[], gap: (reason: FeedGap) => void): Promise<FeedStart | undefined> {
  let start: FeedStart | undefined;
  if (options.partitions === undefined) {
    const saved = await t.checkpoints.findOne({ _id: options.name });
    start = saved === null ? undefined : { resumeToken: saved.resumeToken, ...(saved.since === undefined ? {} : { since: saved.since }) };
  } else {
    start = await partitionsStart(t, options.name, options.partitions.ids, gap);
  }
  if (start !== undefined && 'resumeToken' in start && !looksLikeResumeToken(start.resumeToken)) {
    // Not a resume token at all (a hand-edited or damaged document): dropped; the sweeper covers the gap.
    const problem = new OutboxError(OutboxErrorCode.checkpointCorrupt, `change stream checkpoint ${JSON.stringify(options.name)} holds no resume token: discarded, starting from now`, {
      context: { feed: options.name },
    });
    t.logger.error(problem.message, { error: problem });
    await t.checkpoints.deleteMany({ _id: { $in: names } });
    start = undefined;
    gap('checkpoint-unusable');
  } else if (start === undefined) {
    t.logger.info('change stream has no resume token: starting from now, the sweeper finds older pending events', {
      feed: options.name,
    });
    gap('no-checkpoint');
  }
  return start;
}

export function openStream(t: MongoStoreContext, options: FeedOptions, start: FeedStart | undefined): ChangeStreamLike {
  const watchOptions: ChangeStreamOptions = { maxAwaitTimeMS: options.maxWaitMs, batchSize: options.batchSize };
  if (start !== undefined && 'startAt' in start) watchOptions.startAtOperationTime = start.startAt;
  else if (start !== undefined) watchOptions.startAfter = start.resumeToken;
  const partitions = options.partitions === undefined ? {} : prefixed('fullDocument.', partitionMatch(options.partitions.ids));
  return t.events.watch([{ $match: { operationType: 'insert', ...partitions } }], watchOptions);
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
export async function partitionsStart(t: MongoStoreContext, name: string, partitions: readonly number[], gap: (reason: FeedGap) => void): Promise<FeedStart | undefined> {
  const names = partitions.map((p) => partitionCheckpointName(name, p));
  const saved = await t.checkpoints.find({ _id: { $in: [...names, name] } }, { sort: { updatedAt: 1 }, limit: names.length + 1 }).toArray();
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
export async function savePartitionCheckpoints(t: MongoStoreContext, name: string, partitions: { ids: readonly number[]; member: string }, position: Partial<CheckpointDocument>): Promise<void> {
  const now = await serverNow(t);
  const held = await t.leases.find({ group: name, owner: partitions.member, expiresAt: { $gt: now }, partition: { $in: [...partitions.ids] } }, { sort: { partition: 1 }, limit: partitions.ids.length }).toArray();
  const lost = partitions.ids.filter((p) => !held.some((l) => l.partition === p));
  if (lost.length > 0) throw leaseLostError(name, partitions.member, lost);
  const names = partitions.ids.map((p) => partitionCheckpointName(name, p));
  const { matchedCount } = await t.checkpoints.updateMany({ _id: { $in: names } }, { $set: { ...position, updatedAt: now } });
  if (matchedCount < names.length) {
    for (const n of names) await t.checkpoints.updateOne({ _id: n }, { $set: { ...position, updatedAt: now } }, { upsert: true });
  }
}
