/**
 * The two store adapters, each with what the shared contract suite needs: a fresh store of its own,
 * a way to run work in one database transaction beside a business write, and clean-up.
 */
import { MongoClient } from 'mongodb';
import { Pool } from 'pg';
import type { InboxStore } from '../../domain/inbox/inbox';
import type { OutboxStore } from '../../domain/outbox';
import { MongoInbox } from '../../domain/stores/mongodb';
import { PostgresInbox } from '../../domain/stores/postgres';
import { MongoOutboxStore, type MongoTx } from '../../domain/stores/mongodb';
import { PostgresOutboxStore, withPgTransaction, type PgTx } from '../../domain/stores/postgres';
import { mongoUri } from './pipeline-store';
import { testServers, uniqueName } from './servers';

export interface AdapterUnderTest<Tx> {
  store: OutboxStore<Tx> & { deleteCheckpoint(name: string): Promise<void> };
  /** The consumer-side inbox of the same database. */
  inbox: InboxStore<Tx>;
  /** Writes a business record inside `tx` (the effect an inbox consumer applies). */
  writeBusiness(tx: Tx, id: string): Promise<void>;
  /** Runs `work` in one transaction, after writing a business record `businessId` in it. */
  inTransaction<T>(businessId: string, work: (tx: Tx) => Promise<T>): Promise<T>;
  /** Ids of the business records that exist. */
  businessIds(): Promise<string[]>;
  /** Transaction handles on which no transaction is open (what a caller might pass by mistake), by name. */
  withoutTransaction(): Promise<Array<[string, unknown]>>; // unknown: a Pool is refused by the types too; this is the runtime check
  /**
   * Takes away parts of the store that later releases added (a column, an index), as a database set
   * up by an older release has them; resolves with what `setup()` must then report it did.
   */
  olderRelease(): Promise<string[]>;
  /** Damages the saved feed position `name` the way a bad restore or a hand edit would. */
  corruptCheckpoint(name: string): Promise<void>;
  /** Another store on the same database, built with `partitions` (what a second `migrate --partitions N` gets). */
  storeWithPartitions(partitions: number): OutboxStore<Tx>;
  teardown(): Promise<void>;
}

export interface AdapterFactory {
  name: string;
  create(): Promise<AdapterUnderTest<unknown>>;
}

export const postgresAdapter: AdapterFactory = {
  name: 'PostgreSQL',
  async create(): Promise<AdapterUnderTest<PgTx>> {
    const pool = new Pool({ connectionString: testServers().pgUrl, max: 10 });
    const schema = uniqueName('c').replace(/-/g, '_');
    const store = new PostgresOutboxStore({ pool, schema });
    await store.setup();
    await pool.query(`create table "${schema}".business (id text primary key)`);
    const inbox = new PostgresInbox(pool, schema);
    await inbox.setup();
    const opened: Array<() => void> = [];
    return {
      store,
      inbox,
      writeBusiness: async (tx, id) => void (await tx.client.query(`insert into "${schema}".business (id) values ($1)`, [id])),
      inTransaction(businessId, work) {
        return withPgTransaction(pool, async (tx) => {
          await tx.client.query(`insert into "${schema}".business (id) values ($1)`, [businessId]);
          return work(tx);
        });
      },
      async businessIds() {
        const { rows } = await pool.query<{ id: string }>(`select id from "${schema}".business order by id`);
        return rows.map((r) => r.id);
      },
      async withoutTransaction() {
        const idle = await pool.connect();
        opened.push(() => idle.release());
        return [
          ['the pool itself (each statement autocommits)', { client: pool }],
          ['a connection with no BEGIN', { client: idle }],
        ];
      },
      async olderRelease() {
        // Before issue 17: no partitions; its writers' events have none (nor claim tokens, from issue 26).
        await pool.query(`alter table "${schema}".outbox_events drop column claimed_until, drop column partition, drop column claim_token`);
        await pool.query(`drop table "${schema}".outbox_partitions, "${schema}".outbox_leases, "${schema}".outbox_relays`);
        await pool.query(`drop index "${schema}".outbox_events_feed`);
        // Before stats() estimated the published count: no index of the set-aside statuses.
        await pool.query(`drop index "${schema}".outbox_events_set_aside`);
        // Before the feed's wait lock: the trigger notified on every insert.
        await pool.query(`create or replace function "${schema}".outbox_events_notify() returns trigger language plpgsql as $$ begin perform pg_notify('${store.channel}', ''); return null; end $$`);
        return [
          `created table "${schema}".outbox_partitions`,
          `created table "${schema}".outbox_leases`,
          `created table "${schema}".outbox_relays`,
          `added column "${schema}".outbox_events.claimed_until`,
          `added column "${schema}".outbox_events.partition`,
          `added column "${schema}".outbox_events.claim_token`,
          "set the outbox's partition count to 16",
          `replaced function "${schema}".outbox_events_notify() (it notifies only while a feed waits)`,
          'created index outbox_events_feed (concurrently)',
          'created index outbox_events_set_aside (concurrently)',
        ];
      },
      storeWithPartitions: (partitions) => new PostgresOutboxStore({ pool, schema, partitions }),
      async corruptCheckpoint(name) {
        // A position a million transactions ahead of the database (e.g. a checkpoint from another cluster).
        const { rowCount } = await pool.query(
          `update "${schema}".outbox_checkpoints set txid = ((pg_snapshot_xmax(pg_current_snapshot())::text::bigint + 1000000)::text)::xid8 where name = $1`,
          [name],
        );
        if (rowCount !== 1) throw new Error(`no checkpoint ${name} to corrupt`);
      },
      async teardown() {
        for (const close of opened.splice(0)) close();
        await pool.query(`drop schema "${schema}" cascade`);
        await pool.end();
      },
    };
  },
};

export const mongoAdapter: AdapterFactory = {
  name: 'MongoDB',
  async create(): Promise<AdapterUnderTest<MongoTx>> {
    const client = await MongoClient.connect(mongoUri());
    const db = client.db(uniqueName('txoutbox').replace(/-/g, '_'));
    const store = new MongoOutboxStore({ db });
    await store.setup();
    const business = db.collection<{ _id: string }>('business');
    await db.createCollection('business');
    const inbox = new MongoInbox(client, db);
    await inbox.setup();
    return {
      store,
      inbox,
      writeBusiness: async (tx, id) => void (await business.insertOne({ _id: id }, { session: tx.session })),
      async inTransaction(businessId, work) {
        const session = client.startSession();
        try {
          return await session.withTransaction(async () => {
            await business.insertOne({ _id: businessId }, { session });
            return await work({ session });
          });
        } finally {
          await session.endSession();
        }
      },
      async businessIds() {
        return (await business.find({}, { sort: { _id: 1 } }).toArray()).map((d) => d._id);
      },
      async withoutTransaction() {
        const session = client.startSession();
        return [['a session with no transaction started', { session }]];
      },
      async olderRelease() {
        await db.collection('outbox_events').dropIndex('outbox_aggregate');
        await db.collection('outbox_meta').drop();
        return ['created collection outbox_meta', "set the outbox's partition count to 16", 'created index outbox_aggregate on outbox_events'];
      },
      storeWithPartitions: (partitions) => new MongoOutboxStore({ db, partitions }),
      async corruptCheckpoint(name) {
        const { matchedCount } = await db.collection<{ _id: string }>('outbox_checkpoints').updateOne({ _id: name }, { $set: { resumeToken: 'garbage' } });
        if (matchedCount !== 1) throw new Error(`no checkpoint ${name} to corrupt`);
      },
      async teardown() {
        await db.dropDatabase();
        await client.close();
      },
    };
  },
};
