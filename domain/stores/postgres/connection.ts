/**
 * The PostgreSQL adapter's connection side: what a caller's transaction handle is, the pool settings
 * an outbox store wants, and running work in one transaction.
 */
import type { Pool, PoolClient, PoolConfig, QueryResult, QueryResultRow } from 'pg';

/** Anything that runs a query in the caller's transaction: a pg `Client` or `PoolClient`. */
export interface PgQueryable {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
}

/** A connection that can say whether a transaction is open on it (a pg `Client` or `PoolClient`). */
export interface PgTransactionClient extends PgQueryable {
  /** pg's view of the last ReadyForQuery: 'T' inside a transaction block. */
  getTransactionStatus(): string | null;
  /** A statement by pg's query config: with a `name`, prepared once per connection. */
  query<R extends QueryResultRow = QueryResultRow>(config: { name?: string; text: string; values?: unknown[] }): Promise<QueryResult<R>>;
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
}

/** The PostgreSQL adapter's transaction handle: the client on which the caller ran `BEGIN`. */
export interface PgTx {
  client: PgTransactionClient;
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
