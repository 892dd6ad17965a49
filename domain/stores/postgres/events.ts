/**
 * One event at a time: the writer's insert in its transaction (with the key's sequence and the
 * event's partition), the worker's reads, marks and status changes.
 */
import type { QueryResult, QueryResultRow } from 'pg';
import { OutboxError, OutboxErrorCode, partitionOf, payloadHash, supersededNote, type MarkOptions, type MarkResult, type OutboxEvent, type PublishResult, type StatusChange } from '../../outbox';
import { withPgTransaction, type PgTransactionClient, type PgTx } from './connection';
import { positionTakenOr, storeNotSetUp, toEvent, type EventRow, type PgStoreContext } from './context';
import { partitionCountIfSetUp } from './partitions';

export async function insert(t: PgStoreContext, event: OutboxEvent, tx: PgTx): Promise<number | null> {
  // A Pool, or a client with no BEGIN, autocommits: the event would be published even if the
  // business change rolled back, and per-key sequences would stop following commit order.
  const client: Partial<PgTransactionClient> | undefined = tx?.client;
  const status = typeof client?.getTransactionStatus === 'function' ? client.getTransactionStatus() : 'no client';
  if (typeof client?.query !== 'function' || status !== 'T') {
    const why = status === 'no client' ? 'got no pg client (a Pool autocommits each statement)' : status === 'E' ? 'its transaction already failed' : 'no transaction is open on that client';
    throw new OutboxError(OutboxErrorCode.notInTransaction, `postgres store: add() needs { client } on which a transaction is open (BEGIN): ${why}`, {
      context: { eventId: event.id, type: event.type },
    });
  }
  try {
    return await insertInTransaction(t, event, tx);
  } catch (err) {
    // 42P01 undefined_table: the schema was never set up.
    if ((err as { code?: unknown }).code === '42P01') throw storeNotSetUp(`postgres store: ${err instanceof Error ? err.message : String(err)}`, t.schema);
    throw err;
  }
}

export async function insertInTransaction(t: PgStoreContext, event: OutboxEvent, tx: PgTx): Promise<number | null> {
  let sequence: number | null = null;
  if (event.sequence !== null) {
    // The row lock on (topic, key) is held until this transaction ends: a concurrent writer of the
    // same key waits here, so sequences follow commit order.
    const { rows } = await writerStatement<{ sequence: string }>(
      t,
      tx,
      `insert into ${t.sequences} as s (topic, key, sequence) values ($1, $2, 1)
       on conflict (topic, key) do update set sequence = s.sequence + 1
       returning sequence::text`,
      [event.topic, event.key],
    );
    sequence = Number(rows[0]?.sequence);
  }
  const partitions = await partitionCountIfSetUp(t);
  await writerStatement(
    t,
    tx,
    `insert into ${t.events} (id, envelope_version, spec_version, source, type, schema_version,
       aggregate_type, aggregate_id, topic, key, payload, payload_hash, headers, occurred_at, status, attempts, sequence, partition)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
    [
      event.id,
      event.envelopeVersion,
      event.specVersion,
      event.source,
      event.type,
      event.schemaVersion,
      event.aggregateType,
      event.aggregateId,
      event.topic,
      event.key,
      JSON.stringify(event.payload),
      event.payloadHash,
      JSON.stringify(event.headers),
      event.occurredAt,
      event.status,
      event.attempts,
      sequence,
      partitions === null ? null : partitionOf(event.key, partitions),
    ],
  );
  return sequence;
}

/** The name of each of add()'s statements, by its text (one insert and one sequence per schema). */
const statementNames = new Map<string, string>();

/**
 * One of add()'s statements in the writer's transaction: named, so each connection parses and plans
 * it once (PostgresStoreOptions.preparedStatements), its name the hash of its text. A pooler that
 * lost the named statement, or holds one pg does not know of, fails it: that error says what to set.
 */
async function writerStatement<R extends QueryResultRow = QueryResultRow>(t: PgStoreContext, tx: PgTx, text: string, values: unknown[]): Promise<QueryResult<R>> {
  if (!t.preparedStatements) return tx.client.query<R>(text, values);
  let name = statementNames.get(text);
  if (name === undefined) statementNames.set(text, (name = `txoutbox_${payloadHash(text).slice(0, 16)}`));
  return tx.client.query<R>({ name, text, values }).catch((err: unknown) => {
    // 26000 invalid_sql_statement_name, 42P05 duplicate_prepared_statement.
    const code = (err as { code?: unknown }).code;
    if (code !== '26000' && code !== '42P05') throw err;
    throw new OutboxError(
      OutboxErrorCode.invalidConfig,
      `postgres store: this connection lost or never had a statement pg prepared on it (${err instanceof Error ? err.message : String(err)}): behind PgBouncer in transaction mode before 1.21, or without max_prepared_statements, create the store with preparedStatements: false`,
      { cause: err },
    );
  });
}

export async function nextOpenSequence(t: PgStoreContext, topic: string, key: string): Promise<number | null> {
  const { rows } = await t.pool.query<{ sequence: string | null }>(
    `select min(sequence)::text as sequence from ${t.events}
      where topic = $1 and key = $2 and sequence is not null and status in ('pending', 'stuck')`,
    [topic, key],
  );
  return rows[0]?.sequence == null ? null : Number(rows[0].sequence);
}

export async function openEventsOfKey(t: PgStoreContext, topic: string, key: string, afterSequence: number, limit: number): Promise<OutboxEvent[]> {
  const { rows } = await t.pool.query<EventRow>(
    `select * from ${t.events}
      where topic = $1 and key = $2 and sequence > $3 and status in ('pending', 'stuck')
      order by sequence limit $4`,
    [topic, key, afterSequence, limit],
  );
  return rows.map(toEvent);
}

export async function get(t: PgStoreContext, eventId: string): Promise<OutboxEvent | null> {
  const { rows } = await t.pool.query<EventRow>(`select * from ${t.events} where id = $1`, [eventId]);
  return rows[0] ? toEvent(rows[0]) : null;
}

export async function markPublished(t: PgStoreContext, result: PublishResult, options: MarkOptions = {}): Promise<MarkResult> {
  const mark = `update ${t.events}
          set status = 'published', published_at = $2, kafka_partition = $3, kafka_offset = $4, attempts = $5, last_error = null
        where id = $1 and status in ('pending', 'stuck')`;
  const values = [result.eventId, result.publishedAt, result.partition, result.offset, result.attempts];
  const updated = await (options.supersede === true
    ? withPgTransaction(t.pool, async ({ client }) => {
        // Kafka reused this position (the caller read this event's record there): whoever was recorded at it is moved aside.
        await client.query(
          `update ${t.events} set kafka_partition = null, kafka_offset = null, last_error = $5
            where topic = $1 and kafka_partition = $2 and kafka_offset = $3 and id <> $4`,
          [result.topic, result.partition, result.offset, result.eventId, supersededNote(result)],
        );
        return client.query(mark, values);
      })
    : t.pool.query(mark, values)
  ).catch((err: unknown) => {
    throw positionTakenOr(err, [result]);
  });
  if (updated.rowCount === 1) return 'marked';
  const current = await get(t, result.eventId);
  return current === null ? 'not-found' : 'already-published';
}

export async function recordFailure(t: PgStoreContext, eventId: string, failure: { attempts: number; lastError: string }): Promise<void> {
  await t.pool.query(`update ${t.events} set attempts = greatest(attempts, $2), last_error = $3 where id = $1`, [
    eventId,
    failure.attempts,
    failure.lastError,
  ]);
}

export async function transition(t: PgStoreContext, eventId: string, change: StatusChange): Promise<boolean> {
  let result;
  if (change.to === 'stuck') {
    result = await t.pool.query(
      `update ${t.events} set status = 'stuck', attempts = greatest(attempts, $2), last_error = $3 where id = $1 and status = 'pending'`,
      [eventId, change.attempts, change.lastError],
    );
  } else if (change.to === 'pending') {
    result = await t.pool.query(`update ${t.events} set status = 'pending' where id = $1 and status = 'stuck'`, [eventId]);
  } else {
    result = await t.pool.query(`update ${t.events} set status = $2, resolution = $3 where id = $1 and status = 'stuck'`, [
      eventId,
      change.to,
      JSON.stringify(change.resolution),
    ]);
  }
  return result.rowCount === 1;
}
