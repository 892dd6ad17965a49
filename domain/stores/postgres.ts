/** `txoutbox/postgres`: the PostgreSQL adapter (outbox store and consumer inbox). Needs `pg` (a peer dependency). */
export { PostgresOutboxStore, pgPoolConfig, withPgTransaction, type PgQueryable, type PgTransactionClient, type PgTx, type PostgresStoreOptions } from './postgres-store';
export { PostgresInbox } from './postgres-inbox';
