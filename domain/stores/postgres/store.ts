import { OperationsStore, type StoreOperations } from '../operations-store';
import * as admin from './admin';
import * as claims from './claims';
import type { PgTx } from './connection';
import { pgStoreContext, type PgStoreContext, type PostgresStoreOptions } from './context';
import * as events from './events';
import * as feed from './feed';
import * as partitions from './partitions';
import * as schema from './schema';

const POSTGRES_OPERATIONS: StoreOperations<PgStoreContext, PgTx> = {
  // Each concern's module: its operations, by name.
  ...schema, ...events, ...claims, ...feed, ...partitions, ...admin,
  close: async (t) => {
    if (t.ownsPool) await t.pool.end();
  },
};

/**
 * The PostgreSQL adapter. Events are rows of `<schema>.outbox_events`, written in the caller's
 * transaction. The change feed is a durable cursor over `(txid, id)`, where `txid` is the writing
 * transaction's id (`pg_current_xact_id()`): the feed only reads rows whose transaction id is below
 * the oldest transaction still running (`pg_snapshot_xmin`), so a transaction that commits late can
 * never slip behind a saved position. LISTEN/NOTIFY (sent by an insert trigger, delivered at commit,
 * only while a feed waits: see feed-wait.ts) wakes the feed; it also polls every `maxWaitMs`. Each
 * concern is a module of this folder.
 */
export class PostgresOutboxStore extends OperationsStore<PgStoreContext, PgTx> {
  readonly schema: string;
  /** The LISTEN/NOTIFY channel of the insert trigger. */
  readonly channel: string;
  /** The advisory lock a waiting feed holds: writers notify only then (see feed-wait.ts). */
  readonly feedWaitLock: string;

  constructor(options: PostgresStoreOptions) {
    const t = pgStoreContext(options);
    super('postgres', t, POSTGRES_OPERATIONS);
    this.schema = t.schema;
    this.channel = t.channel;
    this.feedWaitLock = t.feedWaitLock;
  }
}
