/**
 * `txoutbox/postgres`: the PostgreSQL adapter (outbox store and consumer inbox). Needs `pg` (a peer dependency).
 * The store's parts live beside it: schema, events, claims, feed, partitions, admin.
 */
export { pgPoolConfig, withPgTransaction, type PgQueryable, type PgTransactionClient, type PgTx } from './connection';
export type { PostgresStoreOptions } from './context';
export { PostgresInbox } from './inbox';
export { PostgresOutboxStore } from './store';
