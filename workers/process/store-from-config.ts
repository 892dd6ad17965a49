import type { PoolClient } from 'pg';
import type { Logger, OutboxStore } from '../../domain/outbox';
import { redactUrl, type TxoutboxConfig } from './config';
import { MissingPackage } from './reach';

/**
 * Loads the adapter of the configured store only: its driver is an optional peer dependency, so a
 * MongoDB service has no `pg` installed, and the other way round. A missing one is named.
 */
function loadAdapter<T>(load: () => T, driver: string, variable: string): T {
  try {
    return load();
  } catch (err) {
    if ((err as { code?: string }).code === 'MODULE_NOT_FOUND' && String((err as Error).message).includes(`'${driver}'`)) {
      throw new MissingPackage([driver], variable);
    }
    throw err;
  }
}

/**
 * The configured store adapter, with what closes its connections. `onRoundTrip` is told of each
 * request to the store (a MongoDB command, from the driver's command monitoring; a PostgreSQL
 * statement, by its first word), for the round-trips metric.
 */
export async function storeFromConfig(
  config: TxoutboxConfig,
  logger?: Logger,
  onRoundTrip?: (command: string) => void,
): Promise<{ store: OutboxStore<never>; close: () => Promise<void> }> {
  if (config.store === 'mongodb') {
    /* eslint-disable @typescript-eslint/no-require-imports */
    const { MongoClient } = loadAdapter(() => require('mongodb') as typeof import('mongodb'), 'mongodb', 'TXOUTBOX_STORE=mongodb');
    const { MongoOutboxStore } = require('../../domain/stores/mongodb') as typeof import('../../domain/stores/mongodb');
    const uri = config.mongodbUri;
    const client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 10_000, monitorCommands: onRoundTrip !== undefined }).catch((err: unknown) => {
      throw new Error(`${redactUrl(uri)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
    if (onRoundTrip !== undefined) client.on('commandStarted', (started) => onRoundTrip(started.commandName));
    return { store: new MongoOutboxStore({ db: client.db(config.mongodbDb), logger, ...(config.partitions === null ? {} : { partitions: config.partitions }) }), close: () => client.close() };
  }
  const { Pool } = loadAdapter(() => require('pg') as typeof import('pg'), 'pg', 'TXOUTBOX_STORE=postgres');
  const { pgPoolConfig, PostgresOutboxStore } = require('../../domain/stores/postgres') as typeof import('../../domain/stores/postgres');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const pool = new Pool(pgPoolConfig(config.pgUrl));
  // An idle connection broken by a database restart is dropped by the pool; without a listener its
  // 'error' would end the process.
  pool.on('error', (err) => logger?.warn('idle database connection failed; the pool replaces it', { error: err }));
  if (onRoundTrip !== undefined) pool.on('connect', (client) => countStatements(client, onRoundTrip));
  try {
    await pool.query('select 1');
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new Error(`${redactUrl(config.pgUrl)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return { store: new PostgresOutboxStore({ pool, schema: config.pgSchema, logger, ...(config.partitions === null ? {} : { partitions: config.partitions }) }), close: () => pool.end() };
}

/** Tells `onRoundTrip` of each statement the client sends (pool.query and transactions both go through it), by its first word. */
function countStatements(client: PoolClient, onRoundTrip: (command: string) => void): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  const counted = (...args: unknown[]): unknown => {
    const [first] = args;
    const text = typeof first === 'string' ? first : ((first as { text?: string } | null)?.text ?? '');
    onRoundTrip(/^\s*(\w+)/.exec(text)?.[1]?.toLowerCase() ?? 'other');
    return query(...args);
  };
  client.query = counted as PoolClient['query'];
}
