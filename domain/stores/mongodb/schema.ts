/**
 * The MongoDB store's schema: its collections, the partition count, the events collection's indexes
 * (the last one marks a store set up), created by `setup()` and checked by `checkSetUp()`.
 */
import type { IndexDescription } from 'mongodb';
import { DEFAULT_PARTITION_COUNT, OutboxError, OutboxErrorCode } from '../../outbox';
import type { MongoStoreContext } from './context';

/** Creates the collections (a transaction is no place to create one: mongod before 4.4 refuses) and indexes. */
export async function setup(t: MongoStoreContext): Promise<string[]> {
  const done: string[] = [];
  // Asked first: a server may answer createCollection of an existing one without NamespaceExists (SecantusDB does).
  const listed = t.db.command === undefined ? [] : ((await t.db.command({ listCollections: 1, nameOnly: true })).cursor?.firstBatch ?? []) as Array<{ name?: unknown }>;
  const present = new Set(listed.map((c) => c.name));
  for (const name of t.collectionNames) {
    if (present.has(name)) continue;
    const created = await t.db.createCollection(name).then(
      () => true,
      (err: unknown) => {
        if ((err as { codeName?: unknown }).codeName !== 'NamespaceExists') throw err;
        return false;
      },
    );
    if (created) done.push(`created collection ${name}`);
  }
  const wanted = t.partitionsOption ?? DEFAULT_PARTITION_COUNT;
  // Upserted only when absent: the count is fixed by the first set-up, and read back as it is.
  const before = await t.meta.findOneAndUpdate({ _id: 'partitions' }, { $setOnInsert: { count: wanted } }, { upsert: true, returnDocument: 'before' });
  if (before === null) done.push(`set the outbox's partition count to ${wanted}`);
  const stored = before?.count ?? wanted;
  if (t.partitionsOption !== undefined && stored !== t.partitionsOption) {
    throw new OutboxError(OutboxErrorCode.invalidConfig, `mongodb store: the outbox has ${String(stored)} partitions, fixed at its set-up; it cannot be set up with ${t.partitionsOption}`);
  }
  const existing = new Set(await eventIndexNames(t));
  const missing = EVENT_INDEXES.filter((index) => !existing.has(index.name));
  // createIndexes builds on a live collection without holding its lock for the build (MongoDB 4.2+).
  if (missing.length > 0) await t.events.createIndexes(missing);
  for (const index of missing) done.push(`created index ${index.name} on ${eventsName(t)}`);
  t.setUpChecked = true;
  return done;
}

/** The events collection's indexes; the marker index comes last. */
const EVENT_INDEXES: Array<IndexDescription & { name: string }> = [
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
const SET_UP_MARKER_INDEX = 'outbox_kafka_position';

export function eventsName(t: MongoStoreContext): string {
  return t.collectionNames[0] ?? 'outbox_events';
}

/** The names of the events collection's indexes (none when it does not exist); null without commands. */
export async function eventIndexNames(t: MongoStoreContext): Promise<unknown[] | null> {
  if (t.db.command === undefined) return null; // a stand-in database without commands: nothing to ask
  return t.db.command({ listIndexes: eventsName(t) }).then(
    (reply): unknown[] => ((reply.cursor as { firstBatch?: Array<{ name?: unknown }> } | undefined)?.firstBatch ?? []).map((i) => i.name),
    (err: unknown) => {
      if ((err as { codeName?: unknown }).codeName === 'NamespaceNotFound') return [] as unknown[];
      throw err;
    },
  );
}

export async function checkSetUp(t: MongoStoreContext): Promise<void> {
  const names = await eventIndexNames(t);
  if (names === null) return;
  if (!names.includes(SET_UP_MARKER_INDEX)) {
    throw new OutboxError(
      OutboxErrorCode.storeNotSetUp,
      `mongodb store: collection ${eventsName(t)} has no index ${SET_UP_MARKER_INDEX}: the outbox store is not set up in this database; run \`txoutbox migrate\` once (or call store.setup() from your migrations)`,
      { context: { collection: eventsName(t) } },
    );
  }
  t.setUpChecked = true;
}
