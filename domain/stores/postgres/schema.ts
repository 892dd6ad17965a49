/**
 * The PostgreSQL store's schema: its tables, columns, indexes and notify trigger, created or brought
 * up to date by `setup()` (doing only what is missing, safe on a live database), and checked by `checkSetUp()`.
 */
import { DEFAULT_PARTITION_COUNT, MAX_PARTITION_COUNT, OutboxError, OutboxErrorCode } from '../../outbox';
import type { PgQueryable } from './connection';
import { storeNotSetUp, type PgStoreContext } from './context';
import { notifyTriggerBody } from './feed-wait';

/** The longest setup() waits for one lock before it gives up (changing nothing in that step). */
export const SETUP_LOCK_TIMEOUT = '10s';

/** Columns of the events table added after its first release, with their types. */
const ADDED_COLUMNS: ReadonlyArray<[string, string]> = [
  ['resolution', 'jsonb'],
  ['sequence', 'bigint'],
  ['owner', 'text'],
  ['claimed_until', 'timestamptz'],
  // issue 17: rows written before it have none, and count as partition 0 (see partitionFilter).
  ['partition', 'int'],
  // issue 26: the fast claimant's token (release and markPublishedMany act only under it).
  ['claim_token', 'uuid'],
];

/**
 * Creates or updates the tables, columns, indexes and trigger, doing only what is missing, so it is
 * safe on a live database:
 * - nothing that exists is touched (a second run takes no lock on the events table);
 * - every lock is waited for at most `SETUP_LOCK_TIMEOUT` (a long transaction of the application makes
 *   it fail, changing nothing, instead of queueing every writer behind it);
 * - an index missing on an existing table is built `concurrently`, without blocking writes.
 * Returns what it did, one line per change.
 */
export async function setup(t: PgStoreContext): Promise<string[]> {
  const done: string[] = [];
  // How many of `done` are committed: the transaction's steps are undone if it fails.
  let kept = 0;
  const client = await t.pool.connect();
  const lockKey = `txoutbox-setup:${t.schema}`;
  try {
    // One setup at a time per schema (a session lock: the concurrent index builds run outside the transaction).
    await client.query('select pg_advisory_lock(hashtext($1))', [lockKey]);
    await client.query(`set lock_timeout = '${SETUP_LOCK_TIMEOUT}'`);
    await client.query('begin');
    await client.query(`create schema if not exists "${t.schema}"`);
    const created = await createTables(t, client, done);
    await addColumns(t, client, done);
    await fixPartitionCount(t, client, done);
    await createNotifyTrigger(t, client, done);
    const later = await createIndexes(t, client, created, done);
    await client.query('commit');
    kept = done.length;
    for (const [index, definition] of later) {
      // A concurrent build that failed leaves an invalid index behind: it is dropped and built again.
      if ((await indexState(t, client, index)) === 'invalid') await client.query(`drop index concurrently if exists "${t.schema}".${index}`);
      await client.query(`create ${definition.replace(/^(unique )?index /, '$1index concurrently ')}`);
      done.push(`created index ${index} (concurrently)`);
      kept = done.length;
    }
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    if ((err as { code?: unknown }).code === '55P03') {
      throw new OutboxError(
        OutboxErrorCode.setupBlocked,
        `postgres store: setup waited ${SETUP_LOCK_TIMEOUT} for a lock a running transaction holds (${err instanceof Error ? err.message : String(err)}); kept: ${done.slice(0, kept).join('; ') || 'nothing'}. Run it again.`,
        { cause: err },
      );
    }
    throw err;
  } finally {
    await client.query('reset lock_timeout').catch(() => undefined);
    await client.query('select pg_advisory_unlock(hashtext($1))', [lockKey]).catch(() => undefined);
    client.release();
  }
  return done;
}

/** The tables missing, created; returns their names. */
async function createTables(t: PgStoreContext, client: PgQueryable, done: string[]): Promise<Set<string>> {
  const created = new Set<string>();
  for (const [table, ddl] of tableDefinitions(t)) {
    if (await relationExists(client, table)) continue;
    await client.query(ddl);
    created.add(table);
    done.push(`created table ${table}`);
  }
  return created;
}

/** Columns added after the first release of the events table: nullable, no default, so adding one changes only the catalog. */
async function addColumns(t: PgStoreContext, client: PgQueryable, done: string[]): Promise<void> {
  const { rows: columns } = await client.query<{ column_name: string }>(
    `select column_name from information_schema.columns where table_schema = $1 and table_name = 'outbox_events'`,
    [t.schema],
  );
  const have = new Set(columns.map((c) => c.column_name));
  for (const [column, type] of ADDED_COLUMNS) {
    if (have.has(column)) continue;
    await client.query(`alter table ${t.events} add column if not exists ${column} ${type}`);
    done.push(`added column ${t.events}.${column}`);
  }
}

/** The partition count: written once, by the first setup; never changed after. */
async function fixPartitionCount(t: PgStoreContext, client: PgQueryable, done: string[]): Promise<void> {
  const wanted = t.partitionsOption ?? DEFAULT_PARTITION_COUNT;
  const { rowCount: countCreated } = await client.query(`insert into ${t.partitionsTable} (id, count) values (true, $1) on conflict (id) do nothing`, [wanted]);
  if (countCreated === 1) done.push(`set the outbox's partition count to ${wanted}`);
  const { rows: countRows } = await client.query<{ count: number }>(`select count from ${t.partitionsTable}`);
  const stored = countRows[0]?.count;
  if (t.partitionsOption !== undefined && stored !== t.partitionsOption) {
    throw new OutboxError(OutboxErrorCode.invalidConfig, `postgres store: the outbox in schema "${t.schema}" has ${String(stored)} partitions, fixed at its set-up; it cannot be set up with ${t.partitionsOption}`);
  }
}

/**
 * The insert trigger that wakes a waiting feed (NOTIFY at commit), and its function; a function of an
 * older release (it notified on every insert) is replaced.
 */
async function createNotifyTrigger(t: PgStoreContext, client: PgQueryable, done: string[]): Promise<void> {
  const { rows: trigger } = await client.query(`select 1 from pg_trigger where tgrelid = $1::regclass and tgname = 'outbox_events_notify'`, [t.events]);
  const name = `"${t.schema}".outbox_events_notify()`;
  const { rows: fn } = await client.query<{ body: string }>(`select prosrc as body from pg_proc where oid = to_regproc($1)`, [`"${t.schema}".outbox_events_notify`]);
  const body = notifyTriggerBody(t);
  if (fn[0]?.body !== body) {
    await client.query(`create or replace function ${name} returns trigger language plpgsql as $$${body}$$`);
    done.push(fn.length === 0 ? `created function ${name}` : `replaced function ${name} (it notifies only while a feed waits)`);
  }
  if (trigger.length === 0) {
    await client.query(`
      create trigger outbox_events_notify after insert on ${t.events}
      for each statement execute function ${name}`);
    done.push(`created trigger outbox_events_notify on ${t.events}`);
  }
}

/**
 * The indexes of a table created just now, built in the transaction (it is empty and no one sees it
 * yet); returns the rest missing, to be built after it, concurrently.
 */
async function createIndexes(t: PgStoreContext, client: PgQueryable, created: ReadonlySet<string>, done: string[]): Promise<Array<[string, string]>> {
  const later: Array<[string, string]> = [];
  for (const [index, table, definition] of indexDefinitions(t)) {
    const state = await indexState(t, client, index);
    if (state === 'valid') continue;
    if (created.has(table)) {
      await client.query(`create ${definition}`);
      done.push(`created index ${index}`);
    } else {
      later.push([index, definition]);
    }
  }
  return later;
}

function tableDefinitions(t: PgStoreContext): Array<[string, string]> {
  return [
    [t.events, eventsTable(t.events)],
    [t.partitionsTable, `create table ${t.partitionsTable} (id boolean primary key default true check (id), count int not null check (count between 1 and ${MAX_PARTITION_COUNT}))`],
    [
      t.leases,
      `create table ${t.leases} (
        grp text not null,
        partition int not null,
        owner text,
        expires_at timestamptz,
        primary key (grp, partition)
      )`,
    ],
    [
      t.relays,
      `create table ${t.relays} (
        grp text not null,
        member text not null,
        expires_at timestamptz not null,
        primary key (grp, member)
      )`,
    ],
    [
      t.sequences,
      `create table ${t.sequences} (
        topic text not null,
        key text not null,
        sequence bigint not null,
        primary key (topic, key)
      )`,
    ],
    [
      t.checkpoints,
      `create table ${t.checkpoints} (
        name text primary key,
        txid xid8 not null,
        id uuid not null,
        updated_at timestamptz not null default now()
      )`,
    ],
  ];
}

/** The events table as its first release created it plus every column added since (see ADDED_COLUMNS). */
function eventsTable(name: string): string {
  return `create table ${name} (
      id uuid primary key,
      txid xid8 not null default pg_current_xact_id(),
      envelope_version int not null,
      spec_version text not null,
      source text not null,
      type text not null,
      schema_version int not null,
      aggregate_type text not null,
      aggregate_id text not null,
      topic text not null,
      key text not null,
      payload jsonb not null,
      payload_hash text not null,
      headers jsonb not null,
      occurred_at timestamptz not null,
      status text not null default 'pending'
        check (status in ('pending', 'published', 'stuck', 'compensated', 'discarded')),
      attempts int not null default 0,
      last_error text,
      published_at timestamptz,
      kafka_partition int,
      kafka_offset bigint,
      resolution jsonb,
      created_at timestamptz not null default now(),
      sequence bigint,
      owner text,
      claimed_until timestamptz,
      partition int,
      claim_token uuid
    )`;
}

/** [index name, its table, `create` without the word create]. */
function indexDefinitions(t: PgStoreContext): Array<[string, string, string]> {
  const e = t.events;
  return [
    ['outbox_events_key_sequence', e, `index outbox_events_key_sequence on ${e} (topic, key, sequence) where sequence is not null`],
    ['outbox_events_feed', e, `index outbox_events_feed on ${e} (txid, id)`],
    ['outbox_events_pending', e, `index outbox_events_pending on ${e} (id) where status = 'pending'`],
    // The few events neither flowing nor published (stuck, compensated, discarded), so stats() counts
    // them without reading the published ones. No write of a new event or its publication touches it.
    ['outbox_events_set_aside', e, `index outbox_events_set_aside on ${e} (status) where status not in ('pending', 'published')`],
    ['outbox_events_aggregate', e, `index outbox_events_aggregate on ${e} (aggregate_type, aggregate_id)`],
    // One Kafka position holds one message: a second event recorded there was never written by that
    // acknowledgement (see markPublished).
    ['outbox_events_kafka_position', e, `unique index outbox_events_kafka_position on ${e} (topic, kafka_partition, kafka_offset) where kafka_offset is not null`],
  ];
}

async function relationExists(client: PgQueryable, name: string): Promise<boolean> {
  const { rows } = await client.query<{ exists: boolean }>('select to_regclass($1) is not null as exists', [name]);
  return rows[0]?.exists === true;
}

async function indexState(t: PgStoreContext, client: PgQueryable, index: string): Promise<'missing' | 'valid' | 'invalid'> {
  const { rows } = await client.query<{ valid: boolean }>('select i.indisvalid as valid from pg_index i where i.indexrelid = to_regclass($1)', [`"${t.schema}".${index}`]);
  return rows.length === 0 ? 'missing' : rows[0]?.valid ? 'valid' : 'invalid';
}

export async function checkSetUp(t: PgStoreContext): Promise<void> {
  const tables = [t.events, t.checkpoints, t.sequences, t.partitionsTable, t.leases, t.relays];
  const { rows } = await t.pool.query<{ missing: string[] }>(
    `select coalesce(array_agg(name), '{}') as missing from unnest($1::text[]) as name where to_regclass(name) is null`,
    [tables],
  );
  const missing = rows[0]?.missing ?? [];
  if (missing.length > 0) throw storeNotSetUp(`postgres store: ${missing.join(', ')} do not exist`, t.schema);
  // The column a release added last: a table set up by an older release lacks it until migrate runs.
  const [newest] = ADDED_COLUMNS[ADDED_COLUMNS.length - 1] ?? [];
  const { rows: column } = await t.pool.query(`select 1 from information_schema.columns where table_schema = $1 and table_name = 'outbox_events' and column_name = $2`, [t.schema, newest]);
  if (column.length === 0) throw storeNotSetUp(`postgres store: ${t.events} has no column ${String(newest)} (set up by an older release)`, t.schema);
}
