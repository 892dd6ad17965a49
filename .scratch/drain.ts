import { Client, Connection } from '@temporalio/client';
import { Kafka, logLevel } from 'kafkajs';
import { Pool } from 'pg';
import { PostgresOutboxStore } from '../domain/stores/postgres-store';
import { cachedPartitions } from '../workers/coalescing-producer';
import { FAST_PATH_REQUEST_TIMEOUT_MS, FastPath } from '../workers/fast-path';
import { createOutboxProducer } from '../workers/kafka-producer';
import { createRelay } from '../workers/relay';

async function main(): Promise<void> {
  const pool = new Pool({ connectionString: process.env.TXOUTBOX_PG_URL, max: 10 });
  const store = new PostgresOutboxStore({ pool, schema: 'exp' });
  await pool.query(`update exp.outbox_events set status = 'pending', owner = null, claimed_until = null, kafka_partition = null, kafka_offset = null, published_at = null`);
  await pool.query(`insert into exp.outbox_checkpoints (name, txid, id, updated_at) values ('d', '0'::xid8, '00000000-0000-0000-0000-000000000000', now()) on conflict (name) do update set txid = '0'::xid8, id = '00000000-0000-0000-0000-000000000000'`);
  const kafka = new Kafka({ clientId: 'exp', brokers: (process.env.TXOUTBOX_KAFKA_BROKERS ?? '').split(','), logLevel: logLevel.NOTHING, requestTimeout: FAST_PATH_REQUEST_TIMEOUT_MS });
  const producer = createOutboxProducer(kafka, { retries: 1 });
  await producer.connect();
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'exp', numPartitions: 3 }] }).catch(() => undefined);
  const fastPath = new FastPath(store, { topics: ['exp'], producer, partitionsOf: cachedPartitions(async (t) => (await admin.fetchTopicMetadata({ topics: [t] })).topics[0]?.partitions ?? []) });
  const connection = await Connection.connect({ address: process.env.TXOUTBOX_TEMPORAL_ADDRESS });
  const relay = createRelay({ store, workflowClient: new Client({ connection }).workflow, taskQueue: 'exp', name: 'd', sweepIntervalMs: 0, fastPath, batchSize: Number(process.env.B ?? 100) });
  const t0 = performance.now();
  const sizes: number[] = [];
  const times: number[] = [];
  let last = t0;
  relay.on('fast', (r) => { sizes.push(r.published + r.fallback * 1000 + r.skipped * 1000000); const now = performance.now(); times.push(Math.round(now - last)); last = now; });
  let done = 0;
  const finished = new Promise<void>((resolve) => relay.on('batch', ({ events }) => { done += events; if (done >= 20000) resolve(); }));
  const running = await relay.start();
  await finished;
  console.log('drained', done, 'in', ((performance.now() - t0) / 1000).toFixed(2), 's');
  console.log('sizes', sizes.slice(0, 20).join(','), 'times', times.slice(0, 30).join(','));
  await running.shutdown();
  await producer.disconnect(); await admin.disconnect(); await connection.close(); await pool.end();
}
void main();
