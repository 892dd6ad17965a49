/**
 * The database side of a test pipeline, once per store adapter: a database (MongoDB) or schema
 * (PostgreSQL) of its own, with an `orders` table or collection written in the same transaction as
 * the event, an inbox with its effects, and the few direct edits some tests make to simulate what an
 * operator or a crash would leave behind. The e2e suites run on each of `STORE_KINDS`.
 */
import { MongoClient, type ClientSession } from 'mongodb';
import { Pool } from 'pg';
import type { InboxStore } from '../../domain/inbox/inbox';
import type { OutboxStatus, OutboxStore } from '../../domain/outbox';
import { MongoInbox } from '../../domain/stores/mongodb';
import { MongoOutboxStore, type MongoTx } from '../../domain/stores/mongodb';
import { PostgresInbox } from '../../domain/stores/postgres';
import { PostgresOutboxStore, withPgTransaction, type PgTx } from '../../domain/stores/postgres';
import { testServers, uniqueName } from './servers';

export const StoreKind = { mongodb: 'mongodb', postgres: 'postgres' } as const;
export type StoreKind = (typeof StoreKind)[keyof typeof StoreKind];

/** Every store an e2e suite runs on: MongoDB (the default store) and PostgreSQL. */
export const STORE_KINDS: readonly StoreKind[] = [StoreKind.mongodb, StoreKind.postgres];

/** The MongoDB replica set the scripts started (or the user's, named by MONGODB_URI). */
export function mongoUri(): string {
  const uri = process.env.TXOUTBOX_MONGODB_URI ?? process.env.MONGODB_URI;
  if (!uri) throw new Error('MONGODB_URI is not set: run the tests through `npm test`, or export `bash scripts/infra.sh env` first');
  return uri;
}

export interface EventRow {
  id: string;
  status: string;
  kafka_offset: string | null;
  /** Who holds the event (OutboxStore.claim): 'fast', 'workflow' or nobody. */
  owner: string | null;
}

/** What the fault harness's checker compares with Kafka. */
export interface AuditRow {
  id: string;
  status: string;
  lastError: string | null;
  aggregateId: string;
  sequence: number | null;
  partition: number | null;
  offset: string | null;
  /** When its publisher recorded Kafka's acknowledgement (null: not published). */
  publishedAt: Date | null;
}

export interface PipelineStore {
  readonly kind: StoreKind;
  readonly store: OutboxStore<unknown> & { deleteCheckpoint(name: string): Promise<void> };
  /** The consumer-side inbox in the same database. */
  readonly inbox: InboxStore<unknown>;
  /** TXOUTBOX_* settings that point a relay, worker or CLI process at this store. */
  readonly env: Record<string, string>;
  setup(): Promise<void>;
  /** Runs `work` in one database transaction (the driver's own way: withTransaction / BEGIN…COMMIT). */
  inTransaction<T>(work: (tx: unknown) => Promise<T>): Promise<T>;
  /** Writes the business record of an order inside `tx`. */
  insertOrder(tx: unknown, order: { id: string; customerId: string; totalCents: number }): Promise<void>;
  orderIds(): Promise<string[]>;
  eventRows(): Promise<EventRow[]>;
  auditRows(): Promise<AuditRow[]>;
  /** How many events are not yet `published` (the benchmark's and the harness's drain check). */
  unpublishedCount(): Promise<number>;
  /** When each published event was marked published (the benchmark's latency). */
  publishedTimes(): Promise<Array<{ id: string; publishedAt: Date }>>;
  /** Writes an inbox consumer's effect inside `tx`; `effectCounts` says how often each event's was written. */
  recordEffect(tx: unknown, eventId: string, orderId: string): Promise<void>;
  effectCounts(): Promise<Array<{ eventId: string; n: number }>>;
  /** Direct edits that simulate an old publication or a lost status. */
  setPublishedAt(eventId: string, at: Date): Promise<void>;
  setStatus(eventId: string, status: OutboxStatus): Promise<void>;
  checkpointNames(): Promise<string[]>;
  /** Where its data is, for a report that keeps it for inspection. */
  readonly location: string;
  /** Closes the connections and keeps the data. */
  close(): Promise<void>;
  /** Drops the data and closes the connections. */
  teardown(): Promise<void>;
}

export function pipelineStore(kind: StoreKind): PipelineStore {
  return kind === StoreKind.mongodb ? new MongoPipelineStore() : new PostgresPipelineStore();
}

class PostgresPipelineStore implements PipelineStore {
  readonly kind = StoreKind.postgres;
  private readonly servers = testServers();
  readonly schema = uniqueName('t').replace(/-/g, '_');
  readonly location = `PostgreSQL schema ${this.schema}`;
  private readonly pool = new Pool({ connectionString: this.servers.pgUrl, max: 20, connectionTimeoutMillis: 5_000 }).on('error', () => {
    // An idle connection broken by a server restart (test/e2e/store-restart) is dropped by the pool.
  });
  readonly store = new PostgresOutboxStore({ pool: this.pool, schema: this.schema });
  readonly inbox = new PostgresInbox(this.pool, this.schema);
  readonly env = { TXOUTBOX_STORE: 'postgres', TXOUTBOX_PG_URL: this.servers.pgUrl, TXOUTBOX_PG_SCHEMA: this.schema };

  async setup(): Promise<void> {
    await this.store.setup();
    await this.inbox.setup();
    await this.pool.query(`create table "${this.schema}".orders (id text primary key, customer_id text not null, total_cents int not null)`);
    await this.pool.query(`create table "${this.schema}".billing_effects (event_id text not null, order_id text not null)`);
  }

  inTransaction<T>(work: (tx: PgTx) => Promise<T>): Promise<T> {
    return withPgTransaction(this.pool, work);
  }

  async insertOrder(tx: unknown, order: { id: string; customerId: string; totalCents: number }): Promise<void> {
    await (tx as PgTx).client.query(`insert into "${this.schema}".orders (id, customer_id, total_cents) values ($1, $2, $3)`, [order.id, order.customerId, order.totalCents]);
  }

  async orderIds(): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(`select id from "${this.schema}".orders order by id`);
    return rows.map((r) => r.id);
  }

  async eventRows(): Promise<EventRow[]> {
    const { rows } = await this.pool.query<EventRow>(`select id, status, kafka_offset::text, owner from "${this.schema}".outbox_events order by id`);
    return rows;
  }

  async auditRows(): Promise<AuditRow[]> {
    const { rows } = await this.pool.query<AuditRow>(
      `select id, status, last_error as "lastError", aggregate_id as "aggregateId", sequence::int as sequence,
              kafka_partition as partition, kafka_offset::text as offset, published_at as "publishedAt"
         from "${this.schema}".outbox_events`,
    );
    return rows;
  }

  async unpublishedCount(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(`select count(*)::int as n from "${this.schema}".outbox_events where status <> 'published'`);
    return rows[0]?.n ?? 0;
  }

  async publishedTimes(): Promise<Array<{ id: string; publishedAt: Date }>> {
    const { rows } = await this.pool.query<{ id: string; publishedAt: Date }>(
      `select id, published_at as "publishedAt" from "${this.schema}".outbox_events where status = 'published'`,
    );
    return rows;
  }

  async recordEffect(tx: unknown, eventId: string, orderId: string): Promise<void> {
    await (tx as PgTx).client.query(`insert into "${this.schema}".billing_effects (event_id, order_id) values ($1, $2)`, [eventId, orderId]);
  }

  async effectCounts(): Promise<Array<{ eventId: string; n: number }>> {
    const { rows } = await this.pool.query<{ event_id: string; n: number }>(
      `select event_id, count(*)::int as n from "${this.schema}".billing_effects group by event_id order by event_id`,
    );
    return rows.map((r) => ({ eventId: r.event_id, n: r.n }));
  }

  async setPublishedAt(eventId: string, at: Date): Promise<void> {
    await this.pool.query(`update "${this.schema}".outbox_events set published_at = $2 where id = $1`, [eventId, at]);
  }

  async setStatus(eventId: string, status: OutboxStatus): Promise<void> {
    await this.pool.query(`update "${this.schema}".outbox_events set status = $2 where id = $1`, [eventId, status]);
  }

  async checkpointNames(): Promise<string[]> {
    const { rows } = await this.pool.query<{ name: string }>(`select name from "${this.schema}".outbox_checkpoints order by name`);
    return rows.map((r) => r.name);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async teardown(): Promise<void> {
    await this.pool.query(`drop schema if exists "${this.schema}" cascade`);
    await this.close();
  }
}

class MongoPipelineStore implements PipelineStore {
  readonly kind = StoreKind.mongodb;
  private readonly uri = mongoUri();
  private readonly client = new MongoClient(this.uri);
  readonly dbName = uniqueName('t').replace(/-/g, '_');
  readonly location = `MongoDB database ${this.dbName}`;
  private readonly db = this.client.db(this.dbName);
  readonly store = new MongoOutboxStore({ db: this.db });
  readonly inbox = new MongoInbox(this.client, this.db);
  readonly env = { TXOUTBOX_STORE: 'mongodb', TXOUTBOX_MONGODB_URI: this.uri, TXOUTBOX_MONGODB_DB: this.dbName };
  private readonly orders = this.db.collection<{ _id: string; customerId: string; totalCents: number }>('orders');
  private readonly effects = this.db.collection<{ eventId: string; orderId: string }>('billing_effects');
  private readonly events = this.db.collection<{
    _id: string;
    status: string;
    publishedAt?: Date;
    lastError: string | null;
    aggregateId: string;
    sequence: number | null;
    kafka: { partition: number; offset: string } | null;
    owner?: string | null;
  }>('outbox_events');

  async setup(): Promise<void> {
    await this.client.connect();
    // Collections exist before the first transaction writes to them (mongod < 4.4 cannot create them
    // inside one); the store's and the inbox's own setup() create theirs.
    for (const name of ['orders', 'billing_effects']) await this.db.createCollection(name);
    await this.store.setup();
    await this.inbox.setup();
  }

  async inTransaction<T>(work: (tx: MongoTx) => Promise<T>): Promise<T> {
    const session = this.client.startSession();
    try {
      return await session.withTransaction(() => work({ session }));
    } finally {
      await session.endSession();
    }
  }

  async insertOrder(tx: unknown, order: { id: string; customerId: string; totalCents: number }): Promise<void> {
    await this.orders.insertOne({ _id: order.id, customerId: order.customerId, totalCents: order.totalCents }, { session: sessionOf(tx) });
  }

  async orderIds(): Promise<string[]> {
    return (await this.orders.find({}, { sort: { _id: 1 } }).toArray()).map((d) => d._id);
  }

  async eventRows(): Promise<EventRow[]> {
    const docs = await this.events.find({}, { sort: { _id: 1 } }).toArray();
    return docs.map((d) => ({ id: d._id, status: d.status, kafka_offset: d.kafka?.offset ?? null, owner: d.owner ?? null }));
  }

  async auditRows(): Promise<AuditRow[]> {
    const docs = await this.events.find({}).toArray();
    return docs.map((d) => ({
      id: d._id,
      status: d.status,
      lastError: d.lastError ?? null,
      aggregateId: d.aggregateId,
      sequence: d.sequence ?? null,
      partition: d.kafka?.partition ?? null,
      offset: d.kafka?.offset ?? null,
      publishedAt: d.publishedAt ?? null,
    }));
  }

  async unpublishedCount(): Promise<number> {
    return this.events.countDocuments({ status: { $ne: 'published' } });
  }

  async publishedTimes(): Promise<Array<{ id: string; publishedAt: Date }>> {
    const docs = await this.events.find({ status: 'published' }, { projection: { publishedAt: 1 } }).toArray();
    return docs.map((d) => ({ id: d._id, publishedAt: d.publishedAt as Date }));
  }

  async recordEffect(tx: unknown, eventId: string, orderId: string): Promise<void> {
    await this.effects.insertOne({ eventId, orderId }, { session: sessionOf(tx) });
  }

  async effectCounts(): Promise<Array<{ eventId: string; n: number }>> {
    const counts = await this.effects.aggregate<{ _id: string; n: number }>([{ $group: { _id: '$eventId', n: { $sum: 1 } } }, { $sort: { _id: 1 } }]).toArray();
    return counts.map((c) => ({ eventId: c._id, n: c.n }));
  }

  async setPublishedAt(eventId: string, at: Date): Promise<void> {
    await this.events.updateOne({ _id: eventId }, { $set: { publishedAt: at } });
  }

  async setStatus(eventId: string, status: OutboxStatus): Promise<void> {
    await this.events.updateOne({ _id: eventId }, { $set: { status } });
  }

  async checkpointNames(): Promise<string[]> {
    return (await this.db.collection<{ _id: string }>('outbox_checkpoints').find({}, { sort: { _id: 1 } }).toArray()).map((d) => d._id);
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  async teardown(): Promise<void> {
    await this.db.dropDatabase().catch(() => undefined);
    await this.close();
  }
}

function sessionOf(tx: unknown): ClientSession {
  return (tx as MongoTx).session as ClientSession;
}
