/**
 * One event at a time: the writer's insert in its transaction (with the key's sequence and the
 * event's partition), the worker's reads, marks and status changes.
 */
import type { UpdateFilter } from 'mongodb';
import { kafkaPositionTaken, OutboxError, OutboxErrorCode, partitionOf, supersededNote, type MarkOptions, type MarkResult, type OutboxEvent, type PublishResult, type StatusChange } from '../../outbox';
import { isKafkaPositionTaken, publishedUpdate, toEvent, type MongoStoreContext, type MongoTx, type OutboxDocument } from './context';
import { partitionCountIfSetUp } from './partitions';
import { checkSetUp } from './schema';

export async function insert(t: MongoStoreContext, event: OutboxEvent, tx: MongoTx): Promise<number | null> {
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
  if (!t.setUpChecked) await checkSetUp(t);
  let sequence: number | null = null;
  if (event.sequence !== null) {
    // Incremented in the caller's transaction: a concurrent writer of the same key gets a write
    // conflict and retries after this one commits, so sequences follow commit order.
    const counter = await t.sequences.findOneAndUpdate(
      { _id: `${event.topic}\u0000${event.key}` },
      { $inc: { sequence: 1 } },
      { upsert: true, returnDocument: 'after', session },
    );
    sequence = counter?.sequence ?? null;
  }
  const partitions = await partitionCountIfSetUp(t);
  const { id, ...rest } = event;
  await t.events.insertOne({ _id: id, ...rest, sequence, ...(partitions === null ? {} : { partition: partitionOf(event.key, partitions) }) }, { session });
  return sequence;
}

export async function nextOpenSequence(t: MongoStoreContext, topic: string, key: string): Promise<number | null> {
  const [first] = await t.events
    .find({ topic, key, sequence: { $ne: null }, status: { $in: ['pending', 'stuck'] } }, { sort: { sequence: 1 }, limit: 1 })
    .toArray();
  return first?.sequence ?? null;
}

export async function openEventsOfKey(t: MongoStoreContext, topic: string, key: string, afterSequence: number, limit: number): Promise<OutboxEvent[]> {
  const docs = await t.events.find({ topic, key, sequence: { $gt: afterSequence }, status: { $in: ['pending', 'stuck'] } }, { sort: { sequence: 1 }, limit }).toArray();
  return docs.map(toEvent);
}

export async function get(t: MongoStoreContext, eventId: string): Promise<OutboxEvent | null> {
  const doc = await t.events.findOne({ _id: eventId });
  return doc ? toEvent(doc) : null;
}

export async function markPublished(t: MongoStoreContext, result: PublishResult, options: MarkOptions = {}): Promise<MarkResult> {
  if (options.supersede === true) {
    // Kafka reused this position (the caller read this event's record there): whoever was recorded at it is moved aside.
    await t.events.updateMany(
      { topic: result.topic, 'kafka.partition': result.partition, 'kafka.offset': result.offset, _id: { $ne: result.eventId } },
      { $set: { kafka: null, lastError: supersededNote(result) } },
    );
  }
  const { matchedCount } = await t.events.updateOne(...publishedUpdate(result)).catch((err: unknown) => {
    throw isKafkaPositionTaken(err) ? kafkaPositionTaken([result], err) : err;
  });
  if (matchedCount === 1) return 'marked';
  return (await t.events.findOne({ _id: result.eventId })) === null ? 'not-found' : 'already-published';
}

export async function recordFailure(t: MongoStoreContext, eventId: string, failure: { attempts: number; lastError: string }): Promise<void> {
  await t.events.updateOne({ _id: eventId }, { $max: { attempts: failure.attempts }, $set: { lastError: failure.lastError } });
}

export async function transition(t: MongoStoreContext, eventId: string, change: StatusChange): Promise<boolean> {
  const update: UpdateFilter<OutboxDocument> =
    change.to === 'stuck'
      ? { $set: { status: 'stuck', lastError: change.lastError }, $max: { attempts: change.attempts } }
      : change.to === 'pending'
        ? { $set: { status: 'pending' } }
        : { $set: { status: change.to, resolution: change.resolution } };
  const { matchedCount } = await t.events.updateOne({ _id: eventId, status: change.from }, update);
  return matchedCount === 1;
}
