/**
 * The MongoDB adapter's paths that need a replica set to happen for real (resume tokens, post-batch
 * tokens, lost history), driven through small fakes of the driver's collection, session and change
 * stream. Against a real replica set the shared contract suite covers the rest (MONGODB_URI).
 */
import type { ClientSession, Document, OptionalUnlessRequiredId, ResumeToken, WithId } from 'mongodb';
import { createJsonLogger, OutboxErrorCode, partitionCheckpointName, type FeedGap, type OutboxEvent } from '../../domain/outbox';
import { sampleEvent } from '../support/sample-event';
import { type ChangeStreamLike, type MongoCollectionLike, type MongoDbLike } from '../../domain/stores/mongodb/context';
import { MongoOutboxStore } from '../../domain/stores/mongodb';

type Step = { change: Document } | { empty: ResumeToken } | { error: { code: number; message: string } };

/** A change stream that plays a script: documents, empty batches (with a post-batch token), errors. */
class FakeChangeStream implements ChangeStreamLike {
  resumeToken: ResumeToken = null;
  closed = false;
  constructor(private readonly steps: Step[]) {}
  async tryNext(): Promise<Document | null> {
    const step = this.steps.shift();
    if (step === undefined) return null;
    if ('error' in step) throw Object.assign(new Error(step.error.message), { code: step.error.code });
    if ('empty' in step) {
      this.resumeToken = step.empty;
      return null;
    }
    this.resumeToken = step.change._id;
    // The last change of a getMore's batch: the driver's token is then the batch's post-batch token.
    const after = this.steps[0];
    if (after !== undefined && 'empty' in after) {
      this.steps.shift();
      this.resumeToken = after.empty;
    }
    return step.change;
  }
  /** The changes scripted next, up to an empty batch or an error: what one getMore returned. */
  bufferedCount(): number {
    const next = this.steps.findIndex((step) => !('change' in step));
    return next === -1 ? this.steps.length : next;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

class FakeCollection<T extends Document = Document> {
  docs = new Map<string, T>();
  watches: Array<{ options: Document; stream: FakeChangeStream }> = [];
  scripts: Step[][] = [];
  inserted: Array<{ doc: Document; session: ClientSession }> = [];
  async insertOne(doc: OptionalUnlessRequiredId<T>, options: { session: ClientSession }): Promise<unknown> {
    this.inserted.push({ doc, session: options.session });
    this.docs.set(String(doc._id), doc as T);
    return { acknowledged: true };
  }
  async findOne(filter: Document): Promise<T | null> {
    return this.docs.get(String(filter._id)) ?? null;
  }
  async updateOne(filter: Document, update: Document, options?: { upsert?: boolean }): Promise<{ matchedCount: number }> {
    const existing = this.docs.get(String(filter._id));
    if (existing || options?.upsert) this.docs.set(String(filter._id), { ...existing, _id: filter._id, ...update.$set } as T);
    return { matchedCount: existing ? 1 : 0 };
  }
  async deleteOne(filter: Document): Promise<unknown> {
    this.docs.delete(String(filter._id));
    return {};
  }
  async deleteMany(filter: Document = {}): Promise<{ deletedCount: number }> {
    const ids: unknown[] = filter._id?.$in ?? [];
    for (const id of ids) this.docs.delete(String(id));
    return { deletedCount: ids.length };
  }
  async findOneAndUpdate(filter: Document, update: Document): Promise<Document> {
    const existing = this.docs.get(String(filter._id));
    const next: Document = { ...existing, _id: filter._id, sequence: Number(existing?.sequence ?? 0) + Number(update.$inc?.sequence ?? 0) };
    this.docs.set(String(filter._id), next as T);
    return next;
  }
  find(): { toArray(): Promise<T[]> } {
    return { toArray: async () => [...this.docs.values()] };
  }
  async createIndexes(): Promise<unknown> {
    return [];
  }
  watch(_pipeline: Document[], options: Document): ChangeStreamLike {
    const stream = new FakeChangeStream(this.scripts.shift() ?? []);
    this.watches.push({ options, stream });
    return stream;
  }
}

class FakeDb implements MongoDbLike {
  readonly collections = new Map<string, FakeCollection>();
  async createCollection(name: string): Promise<void> {
    this.raw(name);
  }
  collection<T extends Document>(name: string): MongoCollectionLike<T> {
    const raw = this.raw(name);
    // A typed view over the untyped fake: documents go in and out as they are.
    return {
      insertOne: (doc, options) => raw.insertOne(doc, options),
      findOne: async (filter) => (await raw.findOne(filter)) as T | null,
      updateOne: (filter, update, options) => raw.updateOne(filter, update, options),
      updateMany: () => Promise.reject(new Error('updateMany is not faked: ownership claims run against a real MongoDB in the contract suite')),
      deleteOne: (filter) => raw.deleteOne(filter),
      deleteMany: (filter) => raw.deleteMany(filter),
      findOneAndUpdate: async (filter, update) => (await raw.findOneAndUpdate(filter, update)) as WithId<T> | null,
      find: () => ({ toArray: async () => (await raw.find().toArray()) as T[] }),
      bulkWrite: () => Promise.reject(new Error('bulkWrite is not faked: marks run against a real MongoDB in the contract suite')),
      aggregate: () => ({ toArray: () => Promise.reject(new Error('aggregate is not faked: partition status and stats run against a real MongoDB in the contract suite')) }),
      estimatedDocumentCount: () => Promise.reject(new Error('estimatedDocumentCount is not faked: stats run against a real MongoDB in the contract suite')),
      createIndexes: () => raw.createIndexes(),
      watch: (pipeline, options) => raw.watch(pipeline, options),
    };
  }
  /** The fake behind a collection, for the test's own inspection. */
  raw(name: string): FakeCollection {
    const existing = this.collections.get(name);
    if (existing) return existing;
    const created = new FakeCollection();
    this.collections.set(name, created);
    return created;
  }
}

function fakeSession(inTransaction: boolean): ClientSession {
  // A structural stand-in: the adapter only calls inTransaction() and hands the session to the driver.
  const session: Pick<ClientSession, 'inTransaction'> = { inTransaction: () => inTransaction };
  return session as ClientSession;
}

function outboxDoc(id: string): Document {
  const { id: _id, ...rest } = sampleEvent({ id, type: 't', aggregateType: 'a', aggregateId: 'a-1', topic: 'topic', key: 'a-1', payload: { n: 1 }, occurredAt: new Date(0) });
  return { _id, ...rest };
}

function insertChange(id: string): Step {
  return { change: { _id: { _data: `token-${id}` }, operationType: 'insert', fullDocument: outboxDoc(id) } };
}

async function collect(store: MongoOutboxStore, batches: number, gaps: FeedGap[] = []): Promise<Array<{ ids: string[] }>> {
  const feed = store.openFeed({ name: 'relay', batchSize: 10, maxWaitMs: 50 });
  feed.onGap((g) => gaps.push(g));
  const abort = new AbortController();
  const out: Array<{ ids: string[] }> = [];
  for await (const batch of feed.batches(abort.signal)) {
    out.push({ ids: batch.events.map((e: OutboxEvent) => e.id) });
    await batch.checkpoint();
    if (out.length === batches) abort.abort();
  }
  return out;
}

describe('MongoDB adapter (driver fakes)', () => {
  let db: FakeDb;
  let store: MongoOutboxStore;

  beforeEach(() => {
    db = new FakeDb();
    store = new MongoOutboxStore({ db });
  });

  test('add() outside a transaction is refused with NOT_IN_TRANSACTION', async () => {
    const { _id, ...rest } = outboxDoc('e-1');
    const event = { ...(rest as Omit<OutboxEvent, 'id'>), id: String(_id) };
    await expect(store.insert(event, { session: fakeSession(false) })).rejects.toMatchObject({ code: OutboxErrorCode.notInTransaction });
    expect(db.raw('outbox_events').inserted).toHaveLength(0);
  });

  test('add() in a transaction inserts with the caller session and the event id as _id', async () => {
    const session = fakeSession(true);
    const { _id, ...rest } = outboxDoc('e-1');
    await store.insert({ ...(rest as Omit<OutboxEvent, 'id'>), id: String(_id) }, { session });
    const [insert] = db.raw('outbox_events').inserted;
    expect(insert?.session).toBe(session);
    expect(insert?.doc._id).toBe('e-1');
  });

  test('no saved token: the stream opens from now (no startAfter) and reports the gap', async () => {
    db.raw('outbox_events').scripts.push([{ empty: { _data: 'pbrt-1' } }]);
    const gaps: FeedGap[] = [];
    await collect(store, 1, gaps);
    expect(db.raw('outbox_events').watches[0]?.options.startAfter).toBeUndefined();
    expect(gaps).toEqual(['no-checkpoint']);
  });

  test('a saved token reopens the stream with startAfter', async () => {
    await db.raw('outbox_checkpoints').updateOne({ _id: 'relay' }, { $set: { resumeToken: { _data: 'saved' } } }, { upsert: true });
    db.raw('outbox_events').scripts.push([{ empty: { _data: 'pbrt-2' } }]);
    await collect(store, 1);
    expect(db.raw('outbox_events').watches[0]?.options).toMatchObject({ startAfter: { _data: 'saved' }, batchSize: 10 });
  });

  test('a checkpoint holding no resume token is dropped with CHECKPOINT_CORRUPT: from now, gap reported', async () => {
    const lines: string[] = [];
    store = new MongoOutboxStore({ db, logger: createJsonLogger('error', (line) => lines.push(line)) });
    await db.raw('outbox_checkpoints').updateOne({ _id: 'relay' }, { $set: { resumeToken: 'garbage' } }, { upsert: true });
    db.raw('outbox_events').scripts.push([{ empty: { _data: 'pbrt-3' } }]);
    const gaps: FeedGap[] = [];
    await collect(store, 1, gaps);
    expect(db.raw('outbox_events').watches[0]?.options.startAfter).toBeUndefined();
    expect(gaps).toEqual(['checkpoint-unusable']);
    expect(lines.join('\n')).toContain('CHECKPOINT_CORRUPT');
  });

  test('checkpoint() saves the last event token, and the post-batch token after an empty batch', async () => {
    db.raw('outbox_events').scripts.push([insertChange('e-1'), insertChange('e-2'), { empty: { _data: 'pbrt-after-e2' } }, { empty: { _data: 'pbrt-quiet' } }]);
    const checkpoints = db.raw('outbox_checkpoints');
    const batches = await collect(store, 2);
    expect(batches).toEqual([{ ids: ['e-1', 'e-2'] }, { ids: [] }]);
    expect(checkpoints.docs.get('relay')?.resumeToken).toEqual({ _data: 'pbrt-quiet' });
  });

  test('ChangeStreamHistoryLost: drops the token, reopens from now once, reports the gap, no loop', async () => {
    await db.raw('outbox_checkpoints').updateOne({ _id: 'relay' }, { $set: { resumeToken: { _data: 'too-old' } } }, { upsert: true });
    const events = db.raw('outbox_events');
    events.scripts.push([{ error: { code: 286, message: 'Resume of change stream was not possible' } }]);
    events.scripts.push([insertChange('e-9'), { empty: { _data: 'pbrt-9' } }]);
    const gaps: FeedGap[] = [];
    const batches = await collect(store, 1, gaps);
    expect(gaps).toEqual(['history-lost']);
    expect(events.watches.map((w) => w.options.startAfter)).toEqual([{ _data: 'too-old' }, undefined]);
    expect(events.watches[0]?.stream.closed).toBe(true);
    expect(batches).toEqual([{ ids: ['e-9'] }]);
    // The batch ended on an empty getMore, so the saved token is the post-batch token after e-9.
    expect(db.raw('outbox_checkpoints').docs.get('relay')?.resumeToken).toEqual({ _data: 'pbrt-9' });
  });

  test("a partitioned feed whose history was lost drops its partitions' positions, not the group's", async () => {
    const checkpoints = db.raw('outbox_checkpoints');
    await checkpoints.updateOne({ _id: partitionCheckpointName('relay', 3) }, { $set: { resumeToken: { _data: 'too-old' }, updatedAt: new Date() } }, { upsert: true });
    await checkpoints.updateOne({ _id: 'relay' }, { $set: { resumeToken: { _data: 'group' }, updatedAt: new Date() } }, { upsert: true });
    const events = db.raw('outbox_events');
    events.scripts.push([{ error: { code: 286, message: 'Resume of change stream was not possible' } }]);
    events.scripts.push([insertChange('e-9')]);
    const feed = store.openFeed({ name: 'relay', batchSize: 10, maxWaitMs: 50, partitions: { ids: [3], member: 'relay-a' } });
    const gaps: FeedGap[] = [];
    feed.onGap((g) => gaps.push(g));
    const abort = new AbortController();
    const batches = feed.batches(abort.signal)[Symbol.asyncIterator]();
    const first = await batches.next();
    abort.abort();
    await batches.return?.();
    expect(first.done === false ? first.value.events.map((e: OutboxEvent) => e.id) : []).toEqual(['e-9']);
    expect(gaps).toEqual(['history-lost']);
    expect([...checkpoints.docs.keys()]).toEqual(['relay']);
  });

  test('lost history twice in a row is thrown to the relay instead of looping', async () => {
    const events = db.raw('outbox_events');
    events.scripts.push([{ error: { code: 286, message: 'lost' } }]);
    events.scripts.push([{ error: { code: 286, message: 'lost again' } }]);
    await expect(collect(store, 1)).rejects.toMatchObject({ code: 286 });
  });

  test('other errors are not taken for a lost position', async () => {
    db.raw('outbox_events').scripts.push([{ error: { code: 6, message: 'host unreachable' } }]);
    await expect(collect(store, 1)).rejects.toMatchObject({ code: 6 });
    expect(db.raw('outbox_events').watches).toHaveLength(1);
  });
});
