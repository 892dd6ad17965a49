import { Pool, type PoolClient, type PoolConfig, type QueryResult, type QueryResultRow } from 'pg';
import {
  checkPartitionCount,
  createChangeFeed,
  DEFAULT_PARTITION_COUNT,
  leaseLostError,
  MAX_PARTITION_COUNT,
  partitionCheckpointName,
  partitionOf,
  type PartitionStatus,
  DEFAULT_PURGE_BATCH,
  kafkaPositionTaken,
  OutboxError,
  OutboxErrorCode,
  OutboxStatus,
  silentLogger,
  type ChangeFeed,
  type FeedBatch,
  type FeedGap,
  type FeedOptions,
  type JsonValue,
  type Logger,
  type EventOwner,
  type MarkManyResult,
  type MarkOptions,
  type MarkResult,
  supersededNote,
  type OutboxEvent,
  type OutboxStore,
  type PublishResult,
  type ListQuery,
  type PurgeOptions,
  type OutboxStats,
  type OutboxStatus as Status,
  type StatusChange,
} from '../outbox';

/** Anything that runs a query in the caller's transaction: a pg `Client` or `PoolClient`. */
export interface PgQueryable {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
}

/** A connection that can say whether a transaction is open on it (a pg `Client` or `PoolClient`). */
export interface PgTransactionClient extends PgQueryable {
  /** pg's view of the last ReadyForQuery: 'T' inside a transaction block. */
  getTransactionStatus(): string | null;
}

/** The PostgreSQL adapter's transaction handle: the client on which the caller ran `BEGIN`. */
export interface PgTx {
  client: PgTransactionClient;
}

export interface PostgresStoreOptions {
  /** A pool the store uses for its own queries and the feed's LISTEN connection; or give `connectionString`. */
  pool?: Pool;
  /** Used to create a pool when none is given. */
  connectionString?: string;
  /** Schema holding the outbox tables. @default "public" */
  schema?: string;
  /** Logger for the feed. @default silentLogger */
  logger?: Logger;
  /**
   * Longest a query of the store's own pool may take before it fails (a connection whose server
   * stopped answering would hang it, and the feed with it). Only for a pool the store creates; a
   * pool you give keeps its own settings (see `pgPoolConfig`). @default 30000
   */
  queryTimeoutMs?: number;
  /**
   * Partitions of the outbox, fixed by the first `setup()` (issue 17). A later setup with another
   * count fails with INVALID_CONFIG. @default DEFAULT_PARTITION_COUNT (when setup creates them)
   */
  partitions?: number;
}

/**
 * Pool settings for an outbox store: a client-side query timeout, so a half-open connection (a
 * server frozen, a network path lost without a reset) fails a query instead of hanging the feed,
 * and TCP keepalive from 10 s, so such a connection is found even while idle.
 */
export function pgPoolConfig(connectionString: string, options: { queryTimeoutMs?: number; max?: number } = {}): PoolConfig {
  return {
    connectionString,
    max: options.max ?? 10,
    connectionTimeoutMillis: 10_000,
    query_timeout: options.queryTimeoutMs ?? 30_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
}

/**
 * Runs `work` in one transaction on a client of `pool`: BEGIN, COMMIT on success, ROLLBACK when it
 * throws (the error is rethrown). `tx` is what `outbox.add(event, tx)` takes.
 */
export async function withPgTransaction<T>(pool: Pool, work: (tx: PgTx & { client: PoolClient }) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A connection that breaks between two statements (a database restart) emits 'error' on the
  // checked-out client; unheard, it would end the process. Heard, the transaction fails with it and
  // the broken client is destroyed instead of pooled.
  let broken: Error | undefined;
  const onError = (err: Error): void => {
    broken = err;
  };
  client.on('error', onError);
  try {
    await client.query('begin');
    const result = await work({ client });
    if (broken) throw broken;
    await client.query('commit');
    return result;
  } catch (err) {
    if (!broken) await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release(broken);
    if (!broken) client.off('error', onError);
  }
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,40}$/;

/**
 * A where-clause of the events whose partition is in the int[] parameter `param` (null: every
 * partition). Rows written before partitions came have none and count as partition 0.
 */
function partitionFilter(param: string): string {
  return `(${param}::int[] is null or partition = any(${param}::int[]) or (partition is null and 0 = any(${param}::int[])))`;
}
const NIL_UUID = '00000000-0000-0000-0000-000000000000';

interface EventRow {
  id: string;
  envelope_version: number;
  spec_version: string;
  source: string;
  type: string;
  schema_version: number;
  aggregate_type: string;
  aggregate_id: string;
  topic: string;
  key: string;
  payload: JsonValue;
  payload_hash: string;
  headers: OutboxEvent['headers'];
  occurred_at: Date;
  status: OutboxEvent['status'];
  attempts: number;
  last_error: string | null;
  published_at: Date | null;
  kafka_partition: number | null;
  kafka_offset: string | null;
  sequence: string | null;
  resolution: { status: 'compensated' | 'discarded'; reason: string | null; at: string } | null;
  txid: string;
}

interface Position {
  txid: string;
  id: string;
}

/**
 * The PostgreSQL adapter. Events are rows of `<schema>.outbox_events`, written in the caller's
 * transaction. The change feed is a durable cursor over `(txid, id)`, where `txid` is the writing
 * transaction's id (`pg_current_xact_id()`): the feed only reads rows whose transaction id is below
 * the oldest transaction still running (`pg_snapshot_xmin`), so a transaction that commits late can
 * never slip behind a saved position. LISTEN/NOTIFY (sent by an insert trigger, delivered at commit)
 * wakes the feed; it also polls every `maxWaitMs`.
 */
function storeNotSetUp(what: string, schema: string): OutboxError {
  return new OutboxError(
    OutboxErrorCode.storeNotSetUp,
    `${what}: the outbox store is not set up in schema "${schema}"; run \`txoutbox migrate\` once (or call store.setup() from your migrations)`,
    { context: { schema } },
  );
}

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

export class PostgresOutboxStore implements OutboxStore<PgTx> {
  readonly kind = 'postgres';
  readonly schema: string;
  private readonly pool: Pool;
  private readonly ownsPool: boolean;
  private readonly logger: Logger;
  private readonly events: string;
  private readonly checkpoints: string;
  private readonly sequences: string;
  private readonly partitionsTable: string;
  private readonly leases: string;
  private readonly relays: string;
  private readonly partitionsOption: number | undefined;
  /** The outbox's partition count once read (it never changes); undefined: not read yet. */
  private partitionCountRead: number | undefined;
  readonly channel: string;

  constructor(options: PostgresStoreOptions) {
    const schema = options.schema ?? 'public';
    if (!IDENTIFIER.test(schema)) {
      throw new OutboxError(OutboxErrorCode.invalidConfig, `postgres store: schema name ${JSON.stringify(schema)} must match ${IDENTIFIER.source}`);
    }
    if (!options.pool && !options.connectionString) {
      throw new OutboxError(OutboxErrorCode.invalidConfig, 'postgres store: give a pool or a connectionString');
    }
    this.schema = schema;
    this.pool = options.pool ?? new Pool(pgPoolConfig(options.connectionString ?? '', { queryTimeoutMs: options.queryTimeoutMs }));
    this.ownsPool = !options.pool;
    this.logger = options.logger ?? silentLogger;
    if (this.ownsPool) this.pool.on('error', (err) => this.logger.warn('idle database connection failed', { error: err }));
    this.events = `"${schema}".outbox_events`;
    this.checkpoints = `"${schema}".outbox_checkpoints`;
    this.sequences = `"${schema}".outbox_key_sequences`;
    this.partitionsTable = `"${schema}".outbox_partitions`;
    this.leases = `"${schema}".outbox_leases`;
    this.relays = `"${schema}".outbox_relays`;
    this.partitionsOption = options.partitions === undefined ? undefined : checkPartitionCount(options.partitions);
    this.channel = `txoutbox_${schema}`;
  }

  /**
   * Creates or updates the tables, columns, indexes and trigger, doing only what is missing, so it is
   * safe on a live database:
   * - nothing that exists is touched (a second run takes no lock on the events table);
   * - every lock is waited for at most `SETUP_LOCK_TIMEOUT` (a long transaction of the application makes
   *   it fail, changing nothing, instead of queueing every writer behind it);
   * - an index missing on an existing table is built `concurrently`, without blocking writes.
   * Returns what it did, one line per change.
   */
  async setup(): Promise<string[]> {
    const done: string[] = [];
    // How many of `done` are committed: the transaction's steps are undone if it fails.
    let kept = 0;
    const client = await this.pool.connect();
    const lockKey = `txoutbox-setup:${this.schema}`;
    try {
      // One setup at a time per schema (a session lock: the concurrent index builds run outside the transaction).
      await client.query('select pg_advisory_lock(hashtext($1))', [lockKey]);
      await client.query(`set lock_timeout = '${SETUP_LOCK_TIMEOUT}'`);
      const created = new Set<string>();
      await client.query('begin');
      await client.query(`create schema if not exists "${this.schema}"`);
      for (const [table, ddl] of this.tableDefinitions()) {
        if (await this.relationExists(client, table)) continue;
        await client.query(ddl);
        created.add(table);
        done.push(`created table ${table}`);
      }
      // Columns added after the first release of the events table: nullable, no default, so adding one
      // changes only the catalog.
      const { rows: columns } = await client.query<{ column_name: string }>(
        `select column_name from information_schema.columns where table_schema = $1 and table_name = 'outbox_events'`,
        [this.schema],
      );
      const have = new Set(columns.map((c) => c.column_name));
      for (const [column, type] of ADDED_COLUMNS) {
        if (have.has(column)) continue;
        await client.query(`alter table ${this.events} add column if not exists ${column} ${type}`);
        done.push(`added column ${this.events}.${column}`);
      }
      // The partition count: written once, by the first setup; never changed after.
      const wanted = this.partitionsOption ?? DEFAULT_PARTITION_COUNT;
      const { rowCount: countCreated } = await client.query(`insert into ${this.partitionsTable} (id, count) values (true, $1) on conflict (id) do nothing`, [wanted]);
      if (countCreated === 1) done.push(`set the outbox's partition count to ${wanted}`);
      const { rows: countRows } = await client.query<{ count: number }>(`select count from ${this.partitionsTable}`);
      const stored = countRows[0]?.count;
      if (this.partitionsOption !== undefined && stored !== this.partitionsOption) {
        throw new OutboxError(OutboxErrorCode.invalidConfig, `postgres store: the outbox in schema "${this.schema}" has ${String(stored)} partitions, fixed at its set-up; it cannot be set up with ${this.partitionsOption}`);
      }
      const { rows: trigger } = await client.query(`select 1 from pg_trigger where tgrelid = $1::regclass and tgname = 'outbox_events_notify'`, [this.events]);
      const { rows: fn } = await client.query(`select 1 from pg_proc where oid = to_regproc($1)`, [`"${this.schema}".outbox_events_notify`]);
      if (fn.length === 0) {
        await client.query(`
          create function "${this.schema}".outbox_events_notify() returns trigger language plpgsql as $$
          begin
            perform pg_notify('${this.channel}', '');
            return null;
          end $$`);
        done.push(`created function "${this.schema}".outbox_events_notify()`);
      }
      if (trigger.length === 0) {
        await client.query(`
          create trigger outbox_events_notify after insert on ${this.events}
          for each statement execute function "${this.schema}".outbox_events_notify()`);
        done.push(`created trigger outbox_events_notify on ${this.events}`);
      }
      // The indexes of a table created just now are built in the transaction (it is empty and no one
      // sees it yet); the rest after it, concurrently.
      const later: Array<[string, string]> = [];
      for (const [index, table, definition] of this.indexDefinitions()) {
        const state = await this.indexState(client, index);
        if (state === 'valid') continue;
        if (created.has(table)) {
          await client.query(`create ${definition}`);
          done.push(`created index ${index}`);
        } else {
          later.push([index, definition]);
        }
      }
      await client.query('commit');
      kept = done.length;
      for (const [index, definition] of later) {
        // A concurrent build that failed leaves an invalid index behind: it is dropped and built again.
        if ((await this.indexState(client, index)) === 'invalid') await client.query(`drop index concurrently if exists "${this.schema}".${index}`);
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

  private tableDefinitions(): Array<[string, string]> {
    return [
      [
        this.events,
        `create table ${this.events} (
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
        )`,
      ],
      [this.partitionsTable, `create table ${this.partitionsTable} (id boolean primary key default true check (id), count int not null check (count between 1 and ${MAX_PARTITION_COUNT}))`],
      [
        this.leases,
        `create table ${this.leases} (
          grp text not null,
          partition int not null,
          owner text,
          expires_at timestamptz,
          primary key (grp, partition)
        )`,
      ],
      [
        this.relays,
        `create table ${this.relays} (
          grp text not null,
          member text not null,
          expires_at timestamptz not null,
          primary key (grp, member)
        )`,
      ],
      [
        this.sequences,
        `create table ${this.sequences} (
          topic text not null,
          key text not null,
          sequence bigint not null,
          primary key (topic, key)
        )`,
      ],
      [
        this.checkpoints,
        `create table ${this.checkpoints} (
          name text primary key,
          txid xid8 not null,
          id uuid not null,
          updated_at timestamptz not null default now()
        )`,
      ],
    ];
  }

  /** [index name, its table, `create` without the word create]. */
  private indexDefinitions(): Array<[string, string, string]> {
    const e = this.events;
    return [
      ['outbox_events_key_sequence', e, `index outbox_events_key_sequence on ${e} (topic, key, sequence) where sequence is not null`],
      ['outbox_events_feed', e, `index outbox_events_feed on ${e} (txid, id)`],
      ['outbox_events_pending', e, `index outbox_events_pending on ${e} (id) where status = 'pending'`],
      ['outbox_events_aggregate', e, `index outbox_events_aggregate on ${e} (aggregate_type, aggregate_id)`],
      // One Kafka position holds one message: a second event recorded there was never written by that
      // acknowledgement (see markPublished).
      ['outbox_events_kafka_position', e, `unique index outbox_events_kafka_position on ${e} (topic, kafka_partition, kafka_offset) where kafka_offset is not null`],
    ];
  }

  private async relationExists(client: PgQueryable, name: string): Promise<boolean> {
    const { rows } = await client.query<{ exists: boolean }>('select to_regclass($1) is not null as exists', [name]);
    return rows[0]?.exists === true;
  }

  private async indexState(client: PgQueryable, index: string): Promise<'missing' | 'valid' | 'invalid'> {
    const { rows } = await client.query<{ valid: boolean }>('select i.indisvalid as valid from pg_index i where i.indexrelid = to_regclass($1)', [`"${this.schema}".${index}`]);
    return rows.length === 0 ? 'missing' : rows[0]?.valid ? 'valid' : 'invalid';
  }

  async checkSetUp(): Promise<void> {
    const tables = [this.events, this.checkpoints, this.sequences, this.partitionsTable, this.leases, this.relays];
    const { rows } = await this.pool.query<{ missing: string[] }>(
      `select coalesce(array_agg(name), '{}') as missing from unnest($1::text[]) as name where to_regclass(name) is null`,
      [tables],
    );
    const missing = rows[0]?.missing ?? [];
    if (missing.length > 0) throw storeNotSetUp(`postgres store: ${missing.join(', ')} do not exist`, this.schema);
    // The column a release added last: a table set up by an older release lacks it until migrate runs.
    const [newest] = ADDED_COLUMNS[ADDED_COLUMNS.length - 1] ?? [];
    const { rows: column } = await this.pool.query(`select 1 from information_schema.columns where table_schema = $1 and table_name = 'outbox_events' and column_name = $2`, [this.schema, newest]);
    if (column.length === 0) throw storeNotSetUp(`postgres store: ${this.events} has no column ${String(newest)} (set up by an older release)`, this.schema);
  }

  async insert(event: OutboxEvent, tx: PgTx): Promise<number | null> {
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
      return await this.insertInTransaction(event, tx);
    } catch (err) {
      // 42P01 undefined_table: the schema was never set up.
      if ((err as { code?: unknown }).code === '42P01') throw storeNotSetUp(`postgres store: ${err instanceof Error ? err.message : String(err)}`, this.schema);
      throw err;
    }
  }

  private async insertInTransaction(event: OutboxEvent, tx: PgTx): Promise<number | null> {
    let sequence: number | null = null;
    if (event.sequence !== null) {
      // The row lock on (topic, key) is held until this transaction ends: a concurrent writer of the
      // same key waits here, so sequences follow commit order.
      const { rows } = await tx.client.query<{ sequence: string }>(
        `insert into ${this.sequences} as s (topic, key, sequence) values ($1, $2, 1)
         on conflict (topic, key) do update set sequence = s.sequence + 1
         returning sequence::text`,
        [event.topic, event.key],
      );
      sequence = Number(rows[0]?.sequence);
    }
    const partitions = await this.partitionCountIfSetUp();
    await tx.client.query(
      `insert into ${this.events} (id, envelope_version, spec_version, source, type, schema_version,
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

  /**
   * The partition count, read once; null while the outbox was not set up since partitions came
   * (issue 17): its writers then keep writing, their events in partition 0, until `txoutbox migrate`.
   */
  private async partitionCountIfSetUp(): Promise<number | null> {
    if (this.partitionCountRead !== undefined) return this.partitionCountRead;
    const { rows } = await this.pool.query<{ count: number | null }>(`select (select count from ${this.partitionsTable}) as count`).catch((err: unknown) => {
      if ((err as { code?: unknown }).code === '42P01') return { rows: [{ count: null }] };
      throw err;
    });
    const count = rows[0]?.count ?? null;
    if (count !== null) this.partitionCountRead = count;
    return count;
  }

  async partitionCount(): Promise<number> {
    const count = await this.partitionCountIfSetUp();
    if (count === null) throw storeNotSetUp('postgres store: no partition count', this.schema);
    return count;
  }

  async heartbeat(group: string, member: string, ttlMs: number): Promise<string[]> {
    // Members gone for an hour are forgotten (a crashed relay never leaves).
    const { rows } = await this.pool.query<{ member: string }>(
      `with beat as (
         insert into ${this.relays} (grp, member, expires_at) values ($1, $2, now() + $3 * interval '1 millisecond')
         on conflict (grp, member) do update set expires_at = excluded.expires_at),
       gone as (delete from ${this.relays} where grp = $1 and expires_at < now() - interval '1 hour')
       select member from ${this.relays} where grp = $1 and expires_at > now() and member <> $2
       union select $2 order by 1`,
      [group, member, ttlMs],
    );
    return rows.map((r) => r.member);
  }

  async acquire(group: string, member: string, partitions: readonly number[], ttlMs: number): Promise<number[]> {
    if (partitions.length === 0) return [];
    await this.pool.query(`insert into ${this.leases} (grp, partition) select $1, p from unnest($2::int[]) as p on conflict do nothing`, [group, partitions]);
    const { rows } = await this.pool.query<{ partition: number }>(
      `update ${this.leases} set owner = $2, expires_at = now() + $4 * interval '1 millisecond'
        where grp = $1 and partition = any($3::int[]) and (owner = $2 or owner is null or expires_at <= now())
        returning partition`,
      [group, member, partitions, ttlMs],
    );
    return rows.map((r) => r.partition).sort((a, b) => a - b);
  }

  async releaseLeases(group: string, member: string, partitions: readonly number[], leave = false): Promise<void> {
    await this.pool.query(`update ${this.leases} set owner = null, expires_at = null where grp = $1 and owner = $2 and partition = any($3::int[])`, [group, member, partitions]);
    if (leave) await this.pool.query(`delete from ${this.relays} where grp = $1 and member = $2`, [group, member]);
  }

  async partitionStatus(group: string): Promise<PartitionStatus[]> {
    const count = await this.partitionCount();
    const [leases, pending] = await Promise.all([
      this.pool.query<{ partition: number; owner: string | null; expires_at: Date | null }>(`select partition, owner, expires_at from ${this.leases} where grp = $1`, [group]),
      this.pool.query<{ partition: number; n: number; oldest_id: string; oldest_at: Date }>(
        `select coalesce(partition, 0) as partition, count(*)::int as n, min(id::text) as oldest_id, min(occurred_at) as oldest_at
           from ${this.events} where status = 'pending' group by 1`,
      ),
    ]);
    return Array.from({ length: count }, (_, p) => {
      const lease = leases.rows.find((l) => l.partition === p);
      const backlog = pending.rows.find((r) => r.partition === p);
      return {
        partition: p,
        owner: lease?.owner ?? null,
        expiresAt: lease?.expires_at ?? null,
        pending: backlog?.n ?? 0,
        oldestPending: backlog === undefined ? null : { id: backlog.oldest_id, occurredAt: backlog.oldest_at },
      };
    });
  }

  async nextOpenSequence(topic: string, key: string): Promise<number | null> {
    const { rows } = await this.pool.query<{ sequence: string | null }>(
      `select min(sequence)::text as sequence from ${this.events}
        where topic = $1 and key = $2 and sequence is not null and status in ('pending', 'stuck')`,
      [topic, key],
    );
    return rows[0]?.sequence == null ? null : Number(rows[0].sequence);
  }

  async get(eventId: string): Promise<OutboxEvent | null> {
    const { rows } = await this.pool.query<EventRow>(`select * from ${this.events} where id = $1`, [eventId]);
    return rows[0] ? toEvent(rows[0]) : null;
  }

  async markPublished(result: PublishResult, options: MarkOptions = {}): Promise<MarkResult> {
    const mark = `update ${this.events}
            set status = 'published', published_at = $2, kafka_partition = $3, kafka_offset = $4, attempts = $5, last_error = null
          where id = $1 and status in ('pending', 'stuck')`;
    const values = [result.eventId, result.publishedAt, result.partition, result.offset, result.attempts];
    const updated = await (options.supersede === true
      ? withPgTransaction(this.pool, async ({ client }) => {
          // Kafka reused this position (the caller read this event's record there): whoever was recorded at it is moved aside.
          await client.query(
            `update ${this.events} set kafka_partition = null, kafka_offset = null, last_error = $5
              where topic = $1 and kafka_partition = $2 and kafka_offset = $3 and id <> $4`,
            [result.topic, result.partition, result.offset, result.eventId, supersededNote(result)],
          );
          return client.query(mark, values);
        })
      : this.pool.query(mark, values)
    ).catch((err: unknown) => {
      throw positionTakenOr(err, [result]);
    });
    if (updated.rowCount === 1) return 'marked';
    const current = await this.get(result.eventId);
    return current === null ? 'not-found' : 'already-published';
  }

  async claim(eventIds: readonly string[], owner: EventOwner, leaseMs = 60_000, token?: string): Promise<string[]> {
    if (eventIds.length === 0) return [];
    const { rows } =
      owner === 'fast'
        ? await this.pool.query<{ id: string }>(
            `update ${this.events} set owner = 'fast', claimed_until = now() + $2 * interval '1 millisecond', claim_token = coalesce($3::uuid, gen_random_uuid())
              where id = any($1::uuid[]) and status = 'pending' and (owner is null or (owner = 'fast' and claimed_until < now()))
              returning id`,
            [eventIds, leaseMs, token ?? null],
          )
        : await this.pool.query<{ id: string }>(
            `update ${this.events} set owner = 'workflow', claimed_until = null, claim_token = null
              where id = any($1::uuid[]) and status in ('pending', 'stuck')
                and (owner is null or owner = 'workflow' or claimed_until < now())
              returning id`,
            [eventIds],
          );
    return rows.map((r) => r.id);
  }

  async release(eventIds: readonly string[], token: string): Promise<void> {
    if (eventIds.length === 0) return;
    await this.pool.query(
      `update ${this.events} set owner = null, claimed_until = null, claim_token = null
        where id = any($1::uuid[]) and owner = 'fast' and status = 'pending' and claim_token = $2`,
      [eventIds, token],
    );
  }

  async markPublishedMany(results: readonly PublishResult[], token: string): Promise<MarkManyResult> {
    if (results.length === 0) return { marked: 0, positionTaken: [] };
    const batch = [results.map((r) => r.eventId), results.map((r) => r.publishedAt), results.map((r) => r.partition), results.map((r) => r.offset), results.map((r) => r.attempts), results.map((r) => r.topic), token];
    const values = `unnest($1::uuid[], $2::timestamptz[], $3::int[], $4::bigint[], $5::int[], $6::text[]) as v(id, published_at, kafka_partition, kafka_offset, attempts, topic)`;
    const taken = `exists (select 1 from ${this.events} o where o.topic = v.topic and o.kafka_partition = v.kafka_partition and o.kafka_offset = v.kafka_offset and o.id <> v.id)`;
    // One statement, which leaves out an event whose Kafka position another event holds (one such
    // event no longer fails the batch); a position taken by a concurrent statement meanwhile fails it
    // on the unique index, and it runs once more.
    const mark = (): Promise<{ rows: Array<{ id: string }> }> =>
      this.pool.query<{ id: string }>(
        `update ${this.events} as e
            set status = 'published', published_at = v.published_at, kafka_partition = v.kafka_partition, kafka_offset = v.kafka_offset,
                attempts = v.attempts, last_error = null
           from ${values}
          where e.id = v.id and e.status in ('pending', 'stuck') and e.owner = 'fast' and e.claim_token = $7 and not ${taken}
          returning e.id`,
        batch,
      );
    const marked = await mark().catch((err: unknown) => {
      if (positionTakenOr(err, results) === err) throw err;
      return mark();
    }).catch((err: unknown) => {
      throw positionTakenOr(err, results);
    });
    const markedIds = new Set(marked.rows.map((r) => r.id));
    if (markedIds.size === results.length) return { marked: markedIds.size, positionTaken: [] };
    const { rows } = await this.pool.query<{ id: string }>(`select v.id from ${values} where ${taken}`, batch.slice(0, 6));
    const takenIds = new Set(rows.map((r) => r.id));
    return { marked: markedIds.size, positionTaken: results.filter((r) => !markedIds.has(r.eventId) && takenIds.has(r.eventId)) };
  }

  async recordFailure(eventId: string, failure: { attempts: number; lastError: string }): Promise<void> {
    await this.pool.query(`update ${this.events} set attempts = greatest(attempts, $2), last_error = $3 where id = $1`, [
      eventId,
      failure.attempts,
      failure.lastError,
    ]);
  }

  async transition(eventId: string, change: StatusChange): Promise<boolean> {
    let result;
    if (change.to === 'stuck') {
      result = await this.pool.query(
        `update ${this.events} set status = 'stuck', attempts = greatest(attempts, $2), last_error = $3 where id = $1 and status = 'pending'`,
        [eventId, change.attempts, change.lastError],
      );
    } else if (change.to === 'pending') {
      result = await this.pool.query(`update ${this.events} set status = 'pending' where id = $1 and status = 'stuck'`, [eventId]);
    } else {
      result = await this.pool.query(`update ${this.events} set status = $2, resolution = $3 where id = $1 and status = 'stuck'`, [
        eventId,
        change.to,
        JSON.stringify(change.resolution),
      ]);
    }
    return result.rowCount === 1;
  }

  async findPending(query: { beforeId: string; afterId?: string; limit: number; partitions?: readonly number[] }): Promise<OutboxEvent[]> {
    const { rows } = await this.pool.query<EventRow>(
      `select * from ${this.events}
        where status = 'pending' and id < $1 and id > $2 and ${partitionFilter('$4')}
          and (owner is distinct from 'fast' or claimed_until <= now())
        order by id limit $3`,
      [query.beforeId, query.afterId ?? NIL_UUID, query.limit, query.partitions ?? null],
    );
    return rows.map(toEvent);
  }

  async list(query: ListQuery): Promise<OutboxEvent[]> {
    const { rows } = await this.pool.query<EventRow>(
      `select * from ${this.events}
        where ($1::text is null or status = $1) and ($2::text is null or type = $2)
          and id > $3 and ($4::uuid is null or id < $4)
        order by id limit $5`,
      [query.status ?? null, query.type ?? null, query.afterId ?? NIL_UUID, query.beforeId ?? null, query.limit],
    );
    return rows.map(toEvent);
  }

  async stats(): Promise<OutboxStats> {
    const counts: OutboxStats['counts'] = { pending: 0, published: 0, stuck: 0, compensated: 0, discarded: 0 };
    const { rows } = await this.pool.query<{ status: Status; n: string }>(`select status, count(*)::text as n from ${this.events} group by status`);
    for (const row of rows) counts[row.status] = Number(row.n);
    const oldest = await this.pool.query<{ id: string; occurred_at: Date }>(
      `select id, occurred_at from ${this.events} where status = 'pending' order by id limit 1`,
    );
    const first = oldest.rows[0];
    return { counts, oldestPending: first ? { id: first.id, occurredAt: first.occurred_at } : null };
  }

  async purgePublished(before: Date, options: PurgeOptions = {}): Promise<number> {
    const batchSize = options.batchSize ?? DEFAULT_PURGE_BATCH;
    let deleted = 0;
    for (;;) {
      const result = await this.pool.query(
        `delete from ${this.events} where id in (
           select id from ${this.events} where status = 'published' and published_at < $1 limit $2 for update skip locked)`,
        [before, batchSize],
      );
      deleted += result.rowCount ?? 0;
      if ((result.rowCount ?? 0) < batchSize) return deleted;
    }
  }

  openFeed(options: FeedOptions): ChangeFeed {
    return createChangeFeed((signal, gap) => this.feedBatches(options, signal, gap));
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end();
  }

  /** Deletes the feed's saved position (operators' "reset"; also what the tests use to lose it). */
  async deleteCheckpoint(name: string): Promise<void> {
    await this.pool.query(`delete from ${this.checkpoints} where name = $1`, [name]);
  }

  private async *feedBatches(options: FeedOptions, signal: AbortSignal, gap: (reason: FeedGap) => void): AsyncGenerator<FeedBatch> {
    const listener: PoolClient = await this.pool.connect();
    let woken = true;
    let wake: (() => void) | undefined;
    const onNotify = (): void => {
      woken = true;
      wake?.();
    };
    const onAbort = (): void => wake?.();
    // The LISTEN connection can break while it waits (a database restart): the feed then fails and
    // the relay reopens it from the checkpoint, instead of an unhandled 'error' ending the process.
    let broken: Error | undefined;
    const onError = (err: Error): void => {
      broken = err;
      wake?.();
    };
    listener.on('error', onError);
    listener.on('notification', onNotify);
    signal.addEventListener('abort', onAbort);
    try {
      await listener.query(`listen ${this.channel}`);
      let position = options.partitions === undefined ? await this.loadCheckpoint(options.name) : await this.loadPartitionsStart(options.name, options.partitions.ids, gap);
      if (position === null) {
        position = await this.currentPosition();
        this.logger.info('change feed has no checkpoint: starting from now, the sweeper finds older pending events', {
          feed: options.name,
        });
        gap('no-checkpoint');
      } else if (await this.isFromTheFuture(position)) {
        // A position no transaction has reached yet (a restored backup, a hand-edited row): kept, it
        // would hide every new event until the counter caught up, and as positions only move forward
        // it would never be replaced. Dropped instead; the sweeper delivers what the feed skips.
        const problem = new OutboxError(
          OutboxErrorCode.checkpointCorrupt,
          `change feed checkpoint ${JSON.stringify(options.name)} is ahead of the database (txid ${position.txid}): discarded, starting from now`,
          { context: { feed: options.name, txid: position.txid } },
        );
        this.logger.error(problem.message, { error: problem });
        if (options.partitions === undefined) await this.deleteCheckpoint(options.name);
        else await this.pool.query(`delete from ${this.checkpoints} where name = any($1::text[])`, [options.partitions.ids.map((p) => partitionCheckpointName(options.name, p))]);
        position = await this.currentPosition();
        gap('checkpoint-unusable');
      }
      while (!signal.aborted) {
        if (broken) throw broken;
        woken = false;
        const claimedAt = Date.now();
        const rows = await this.readFeed(position, options);
        const last = rows[rows.length - 1];
        const next: Position = last ? { txid: last.txid, id: last.id } : position;
        const saved = position;
        yield {
          events: rows.map(toEvent),
          checkpoint: async () => {
            if (options.partitions !== undefined) await this.savePartitionCheckpoints(options.name, options.partitions, next);
            else if (next !== saved) await this.saveCheckpoint(options.name, next);
          },
          ...(options.claim === undefined ? {} : { claimed: { ids: new Set(rows.filter((r) => r.fast_claimed === true).map((r) => r.id)), at: claimedAt, token: options.claim.token } }),
        };
        position = next;
        if (rows.length < options.batchSize && !woken && !signal.aborted) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, options.maxWaitMs);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
        }
      }
    } catch (err) {
      // A query that failed (a timeout on a connection that stopped answering) leaves the LISTEN
      // connection unusable too: it is destroyed, not pooled.
      broken ??= err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
      listener.off('notification', onNotify);
      if (broken) {
        listener.release(broken); // destroys the broken connection instead of pooling it
      } else {
        await listener.query(`unlisten ${this.channel}`).catch(() => undefined);
        listener.off('error', onError);
        listener.release();
      }
    }
  }

  /**
   * The feed's next rows after `position`. With `options.claim`, the same statement claims the
   * eligible ones for the fast path (what `claim(ids, 'fast')` does), so reading and claiming are
   * one round trip; `fast_claimed` says which it claimed. The claim looks the rows up by primary key
   * (`= any(array(...))`): joined to the batch instead, the planner was seen to pick a plan that
   * took 100+ ms per batch once the table's statistics changed mid-drain.
   */
  private async readFeed(position: Position, options: FeedOptions): Promise<Array<EventRow & { fast_claimed?: boolean }>> {
    const partitions = options.partitions?.ids ?? null;
    const next = `select * from ${this.events}
        where txid < pg_snapshot_xmin(pg_current_snapshot())
          and (txid, id) > ($1::xid8, $2::uuid) and ${partitionFilter(options.claim === undefined ? '$4' : '$7')}
        order by txid, id
        limit $3`;
    if (options.claim === undefined) {
      return (await this.pool.query<EventRow>(next, [position.txid, position.id, options.batchSize, partitions])).rows;
    }
    const { topics, types, leaseMs, token } = options.claim;
    const { rows } = await this.pool.query<EventRow & { fast_claimed: boolean }>(
      `with batch as (${next}),
       claimed as (
         update ${this.events} as e set owner = 'fast', claimed_until = now() + $4 * interval '1 millisecond', claim_token = $8::uuid
          where e.id = any(array(select id from batch)) and (e.topic = any($5::text[]) or e.type = any($6::text[]))
            and e.status = 'pending' and (e.owner is null or (e.owner = 'fast' and e.claimed_until < now()))
          returning e.id)
       select batch.*, claimed.id is not null as fast_claimed
         from batch left join claimed on claimed.id = batch.id
        order by batch.txid, batch.id`,
      [position.txid, position.id, options.batchSize, leaseMs, [...topics], [...types], partitions, token],
    );
    return rows;
  }

  /**
   * Where a partitioned feed starts: the oldest of its partitions' saved positions, so no partition
   * misses an event (the others read a few again: their starts are refused as duplicates, their fast
   * claims fail). A partition never saved takes the group's unpartitioned position, where a relay
   * that read every partition left off; with neither, the feed starts from now and reports the gap.
   */
  private async loadPartitionsStart(name: string, partitions: readonly number[], gap: (reason: FeedGap) => void): Promise<Position | null> {
    const names = partitions.map((p) => partitionCheckpointName(name, p));
    const { rows } = await this.pool.query<Position & { name: string }>(
      `select name, txid::text as txid, id::text as id from ${this.checkpoints} where name = any($1::text[]) or name = $2`,
      [names, name],
    );
    const group = rows.find((r) => r.name === name);
    const starts = names.map((n) => rows.find((r) => r.name === n) ?? group).filter((p): p is Position & { name: string } => p !== undefined);
    if (starts.length === 0) return null;
    // A partition with no position: its events before now are the sweeper's.
    if (starts.length < names.length) gap('no-checkpoint');
    return starts.reduce((a, b) => (comparePositions(a, b) <= 0 ? a : b));
  }

  /**
   * Saves `position` for each partition the member still holds, forward only; throws LEASE_LOST,
   * saving nothing, when it holds one of them no longer (its new owner's position is the one that counts).
   */
  private async savePartitionCheckpoints(name: string, partitions: { ids: readonly number[]; member: string }, position: Position): Promise<void> {
    const { rows } = await this.pool.query<{ held: number[] }>(
      `with held as (
         select p, n from unnest($3::int[], $6::text[]) as h(p, n)
          where exists (select 1 from ${this.leases} l where l.grp = $1 and l.partition = p and l.owner = $2 and l.expires_at > now())),
       saved as (
         insert into ${this.checkpoints} as c (name, txid, id, updated_at)
         select n, $4::xid8, $5::uuid, now() from held
          where (select count(*) from held) = cardinality($3::int[])
         on conflict (name) do update set txid = excluded.txid, id = excluded.id, updated_at = now()
          where (c.txid, c.id) < (excluded.txid, excluded.id))
       select coalesce(array_agg(p), '{}') as held from held`,
      [name, partitions.member, partitions.ids, position.txid, position.id, partitions.ids.map((p) => partitionCheckpointName(name, p))],
    );
    const held = new Set(rows[0]?.held ?? []);
    const lost = partitions.ids.filter((p) => !held.has(p));
    if (lost.length > 0) throw leaseLostError(name, partitions.member, lost);
  }

  private async loadCheckpoint(name: string): Promise<Position | null> {
    const { rows } = await this.pool.query<Position>(`select txid::text as txid, id::text as id from ${this.checkpoints} where name = $1`, [name]);
    return rows[0] ?? null;
  }

  /** "Now": every row of a transaction older than the oldest one still running is behind it. */
  private async isFromTheFuture(position: Position): Promise<boolean> {
    const { rows } = await this.pool.query<{ ahead: boolean }>(`select $1::xid8 >= pg_snapshot_xmax(pg_current_snapshot()) as ahead`, [position.txid]);
    return rows[0]?.ahead === true;
  }

  private async currentPosition(): Promise<Position> {
    const { rows } = await this.pool.query<{ txid: string }>(`select pg_snapshot_xmin(pg_current_snapshot())::text as txid`);
    return { txid: rows[0]?.txid ?? '0', id: NIL_UUID };
  }

  private async saveCheckpoint(name: string, position: Position): Promise<void> {
    // Only forward: two relays sharing a name never move the position back.
    await this.pool.query(
      `insert into ${this.checkpoints} as c (name, txid, id, updated_at) values ($1, $2::xid8, $3::uuid, now())
       on conflict (name) do update set txid = excluded.txid, id = excluded.id, updated_at = now()
        where (c.txid, c.id) < (excluded.txid, excluded.id)`,
      [name, position.txid, position.id],
    );
  }
}

/** Orders two feed positions: by transaction id (as a number: xid8 is 64 bits), then by event id. */
function comparePositions(a: Position, b: Position): number {
  const [ta, tb] = [BigInt(a.txid), BigInt(b.txid)];
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function toEvent(row: EventRow): OutboxEvent {
  return {
    id: row.id,
    envelopeVersion: 1,
    specVersion: '1.0',
    source: row.source,
    type: row.type,
    schemaVersion: row.schema_version,
    aggregateType: row.aggregate_type,
    aggregateId: row.aggregate_id,
    topic: row.topic,
    key: row.key,
    payload: row.payload,
    payloadHash: row.payload_hash,
    headers: row.headers,
    occurredAt: row.occurred_at,
    status: row.status ?? OutboxStatus.pending,
    attempts: row.attempts,
    lastError: row.last_error,
    publishedAt: row.published_at,
    kafka: row.kafka_partition === null || row.kafka_offset === null ? null : { partition: row.kafka_partition, offset: row.kafka_offset },
    resolution: row.resolution === null ? null : { ...row.resolution, at: new Date(row.resolution.at) },
    sequence: row.sequence === null ? null : Number(row.sequence),
  };
}

/** A unique violation of the Kafka position index as a typed, retriable error; anything else as it is. */
function positionTakenOr(err: unknown, results: readonly PublishResult[]): unknown {
  const { code, constraint } = err as { code?: unknown; constraint?: unknown };
  return code === '23505' && constraint === 'outbox_events_kafka_position' ? kafkaPositionTaken(results, err) : err;
}
