/**
 * Reads and maintenance across many events: the sweeper's pending events, the CLI's list and
 * stats, and purging what was published long ago.
 */
import type { Filter } from 'mongodb';
import { DEFAULT_PURGE_BATCH, type ListQuery, type OutboxEvent, type OutboxStats, type PurgeOptions, type StatsOptions } from '../../outbox';
import { publishedEstimate } from '../operations-store';
import { partitionMatch, serverNow, toEvent, type MongoStoreContext, type OutboxDocument } from './context';

export async function findPending(t: MongoStoreContext, query: { beforeId: string; afterId?: string; limit: number; partitions?: readonly number[] }): Promise<OutboxEvent[]> {
  const idRange: { $lt: string; $gt?: string } = { $lt: query.beforeId };
  if (query.afterId !== undefined) idRange.$gt = query.afterId;
  const partitions = query.partitions === undefined ? {} : partitionMatch(query.partitions);
  const now = await serverNow(t);
  const docs = await t.events
    .find({ status: 'pending', _id: idRange, ...partitions, $nor: [{ owner: 'fast', claimedUntil: { $gt: now } }] }, { sort: { _id: 1 }, limit: query.limit })
    .toArray();
  return docs.map(toEvent);
}

export async function list(t: MongoStoreContext, query: ListQuery): Promise<OutboxEvent[]> {
  const idRange: { $gt?: string; $lt?: string } = {};
  if (query.afterId !== undefined) idRange.$gt = query.afterId;
  if (query.beforeId !== undefined) idRange.$lt = query.beforeId;
  const filter: Filter<OutboxDocument> = {};
  if (query.status !== undefined) filter.status = query.status;
  if (query.type !== undefined) filter.type = query.type;
  if (Object.keys(idRange).length > 0) filter._id = idRange;
  const docs = await t.events.find(filter, { sort: { _id: 1 }, limit: query.limit }).toArray();
  return docs.map(toEvent);
}

export async function stats(t: MongoStoreContext, options: StatsOptions = {}): Promise<OutboxStats> {
  const counts: OutboxStats['counts'] = { pending: 0, published: 0, stuck: 0, compensated: 0, discarded: 0 };
  const estimated = options.published === 'estimated';
  // Estimated: the published events are not read; they are the collection's count from its metadata
  // less the other statuses.
  const statuses = (Object.keys(counts) as Array<keyof typeof counts>).filter((s) => !(estimated && s === 'published'));
  // One command for every status (as five counts, a scrape of the relay's metrics sent five). The
  // $match and the projection let mongod answer from the status index (outbox_status_id) alone, as
  // each count did, without fetching a document; a bare $group would read every document at each
  // scrape. (SecantusDB fetches the documents the index finds all the same.)
  const pipeline = [{ $match: { status: { $in: statuses } } }, { $project: { _id: 0, status: 1 } }, { $group: { _id: '$status', n: { $sum: 1 } } }];
  for (const row of await t.events.aggregate<{ _id: keyof typeof counts; n: number }>(pipeline).toArray()) counts[row._id] = row.n;
  if (estimated) counts.published = publishedEstimate(counts, await t.events.estimatedDocumentCount());
  const [oldest] = await t.events.find({ status: 'pending' }, { sort: { _id: 1 }, limit: 1 }).toArray();
  return { counts, oldestPending: oldest ? { id: oldest._id, occurredAt: oldest.occurredAt } : null, ...(estimated ? { publishedEstimated: true } : {}) };
}

export async function purgePublished(t: MongoStoreContext, before: Date, options: PurgeOptions = {}): Promise<number> {
  const batchSize = options.batchSize ?? DEFAULT_PURGE_BATCH;
  const filter = { status: 'published' as const, publishedAt: { $lt: before } };
  let deleted = 0;
  for (;;) {
    const ids = (await t.events.find(filter, { sort: { _id: 1 }, limit: batchSize }).toArray()).map((d) => d._id);
    if (ids.length === 0) return deleted;
    deleted += (await t.events.deleteMany({ ...filter, _id: { $in: ids } })).deletedCount;
    if (ids.length < batchSize) return deleted;
  }
}
