/**
 * What every part of the PostgreSQL store shares: its tables (one schema's), its pool and logger,
 * the row shape of an event and how it becomes an OutboxEvent, and the feed's position.
 */
import { Pool } from 'pg';
import { checkPartitionCount, kafkaPositionTaken, OutboxError, OutboxErrorCode, OutboxStatus, silentLogger, type JsonValue, type Logger, type OutboxEvent, type PublishResult } from '../../outbox';
import { pgPoolConfig } from './connection';

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
  /**
   * `outbox.add()`'s statements are named prepared statements: PostgreSQL parses and plans each once
   * per connection, not per event (about 40 µs of its CPU per event here, BENCHMARKS.md). Set false
   * behind a pooler that moves a transaction to any server connection without carrying named
   * statements: PgBouncer in transaction mode before 1.21, or without `max_prepared_statements`.
   * There, add() fails with INVALID_CONFIG naming this option. @default true
   */
  preparedStatements?: boolean;
}

/** One store's tables, pool and logger: what each of its parts (schema, events, claims, feed, partitions, admin) works on. */
export interface PgStoreContext {
  readonly schema: string;
  readonly pool: Pool;
  /** The pool was created by the store (from a connection string), which closes it. */
  readonly ownsPool: boolean;
  readonly logger: Logger;
  readonly events: string;
  readonly checkpoints: string;
  readonly sequences: string;
  readonly partitionsTable: string;
  readonly leases: string;
  readonly relays: string;
  /** The LISTEN/NOTIFY channel of the insert trigger. */
  readonly channel: string;
  /** The advisory lock (by its name's `hashtext`) a waiting feed holds, so writers notify it (see feed-wait.ts). */
  readonly feedWaitLock: string;
  readonly partitionsOption: number | undefined;
  /** The outbox's partition count once read (it never changes); undefined: not read yet. */
  partitionCountRead: number | undefined;
  /** add()'s statements are named (PostgresStoreOptions.preparedStatements). */
  readonly preparedStatements: boolean;
}

export function pgStoreContext(options: PostgresStoreOptions): PgStoreContext {
  const schema = options.schema ?? 'public';
  if (!IDENTIFIER.test(schema)) {
    throw new OutboxError(OutboxErrorCode.invalidConfig, `postgres store: schema name ${JSON.stringify(schema)} must match ${IDENTIFIER.source}`);
  }
  if (!options.pool && !options.connectionString) {
    throw new OutboxError(OutboxErrorCode.invalidConfig, 'postgres store: give a pool or a connectionString');
  }
  const pool = options.pool ?? new Pool(pgPoolConfig(options.connectionString ?? '', { queryTimeoutMs: options.queryTimeoutMs }));
  const logger = options.logger ?? silentLogger;
  if (!options.pool) pool.on('error', (err) => logger.warn('idle database connection failed', { error: err }));
  return {
    schema,
    pool,
    ownsPool: !options.pool,
    logger,
    events: `"${schema}".outbox_events`,
    checkpoints: `"${schema}".outbox_checkpoints`,
    sequences: `"${schema}".outbox_key_sequences`,
    partitionsTable: `"${schema}".outbox_partitions`,
    leases: `"${schema}".outbox_leases`,
    relays: `"${schema}".outbox_relays`,
    channel: `txoutbox_${schema}`,
    feedWaitLock: `txoutbox_${schema}:feed-waits`,
    partitionsOption: options.partitions === undefined ? undefined : checkPartitionCount(options.partitions),
    partitionCountRead: undefined,
    preparedStatements: options.preparedStatements ?? true,
  };
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,40}$/;

/**
 * A where-clause of the events whose partition is in the int[] parameter `param` (null: every
 * partition). Rows written before partitions came have none and count as partition 0.
 */
export function partitionFilter(param: string): string {
  return `(${param}::int[] is null or partition = any(${param}::int[]) or (partition is null and 0 = any(${param}::int[])))`;
}
export const NIL_UUID = '00000000-0000-0000-0000-000000000000';

export interface EventRow {
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

export interface Position {
  txid: string;
  id: string;
}
export function storeNotSetUp(what: string, schema: string): OutboxError {
  return new OutboxError(
    OutboxErrorCode.storeNotSetUp,
    `${what}: the outbox store is not set up in schema "${schema}"; run \`txoutbox migrate\` once (or call store.setup() from your migrations)`,
    { context: { schema } },
  );
}

/** Orders two feed positions: by transaction id (as a number: xid8 is 64 bits), then by event id. */
export function comparePositions(a: Position, b: Position): number {
  const [ta, tb] = [BigInt(a.txid), BigInt(b.txid)];
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function toEvent(row: EventRow): OutboxEvent {
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
export function positionTakenOr(err: unknown, results: readonly PublishResult[]): unknown {
  const { code, constraint } = err as { code?: unknown; constraint?: unknown };
  return code === '23505' && constraint === 'outbox_events_kafka_position' ? kafkaPositionTaken(results, err) : err;
}
