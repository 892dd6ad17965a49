import { MongoClient } from 'mongodb';
import { Pool } from 'pg';
import type { Logger, OutboxStore } from '../domain/outbox';
import { MongoOutboxStore } from '../domain/stores/mongodb-store';
import { PostgresOutboxStore } from '../domain/stores/postgres-store';
import type { TxoutboxConfig } from './config';

/** The configured store adapter, with what closes its connections. */
export async function storeFromConfig(config: TxoutboxConfig, logger?: Logger): Promise<{ store: OutboxStore<never>; close: () => Promise<void> }> {
  if (config.store === 'mongodb') {
    const client = await MongoClient.connect(config.mongodbUri ?? '', { serverSelectionTimeoutMS: 10_000 });
    return { store: new MongoOutboxStore({ db: client.db(config.mongodbDb), logger }), close: () => client.close() };
  }
  const pool = new Pool({ connectionString: config.pgUrl, max: 10, connectionTimeoutMillis: 10_000 });
  return { store: new PostgresOutboxStore({ pool, schema: config.pgSchema, logger }), close: () => pool.end() };
}
