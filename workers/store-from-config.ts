import { MongoClient } from 'mongodb';
import { Pool } from 'pg';
import type { Logger, OutboxStore } from '../domain/outbox';
import { MongoOutboxStore } from '../domain/stores/mongodb-store';
import { pgPoolConfig, PostgresOutboxStore } from '../domain/stores/postgres-store';
import { redactUrl, type TxoutboxConfig } from './config';

/** The configured store adapter, with what closes its connections. */
export async function storeFromConfig(config: TxoutboxConfig, logger?: Logger): Promise<{ store: OutboxStore<never>; close: () => Promise<void> }> {
  if (config.store === 'mongodb') {
    const uri = config.mongodbUri;
    const client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 10_000 }).catch((err: unknown) => {
      throw new Error(`${redactUrl(uri)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
    return { store: new MongoOutboxStore({ db: client.db(config.mongodbDb), logger }), close: () => client.close() };
  }
  const pool = new Pool(pgPoolConfig(config.pgUrl));
  // An idle connection broken by a database restart is dropped by the pool; without a listener its
  // 'error' would end the process.
  pool.on('error', (err) => logger?.warn('idle database connection failed; the pool replaces it', { error: err }));
  try {
    await pool.query('select 1');
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new Error(`${redactUrl(config.pgUrl)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return { store: new PostgresOutboxStore({ pool, schema: config.pgSchema, logger }), close: () => pool.end() };
}
