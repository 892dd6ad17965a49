import { Pool } from 'pg';
import { z } from 'zod';
import { createEventRegistry, createOutbox, defineEventType } from '../domain/outbox';
import { PostgresOutboxStore, withPgTransaction } from '../domain/stores/postgres-store';
import { mapLimit } from '../workers/relay';

async function main(): Promise<void> {
  const pool = new Pool({ connectionString: process.env.TXOUTBOX_PG_URL, max: 10 });
  await pool.query('drop schema if exists exp cascade');
  if (process.env.ONLY_WRITE) await pool.query('create schema exp');
  const store = new PostgresOutboxStore({ pool, schema: 'exp' });
  await store.setup();
  const registry = createEventRegistry([defineEventType({ type: 'x.A', schemaVersion: 1, aggregateType: 'o', topic: 'exp', schema: z.object({ i: z.number() }) })]);
  const outbox = createOutbox({ store, registry, source: 'exp' });
  await mapLimit(Array.from({ length: 20000 }, (_, i) => i), 8, (i) => withPgTransaction(pool, (tx) => outbox.add({ type: 'x.A', aggregateId: `o${i % 20}`, payload: { i } }, tx)));
  await pool.query('analyze exp.outbox_events');
  const pos = { txid: '0', id: '00000000-0000-0000-0000-000000000000' };
  if (process.env.ONLY_WRITE) { await pool.query(`insert into exp.outbox_checkpoints (name, txid, id, updated_at) values ('p', '0'::xid8, '00000000-0000-0000-0000-000000000000', now())`); await pool.end(); return; }
  for (const claim of [undefined, { topics: ['exp'], types: [], leaseMs: 60000 }]) {
    const t0 = performance.now();
    let position = pos;
    let n = 0;
    for (let b = 0; b < 50; b++) {
      const rows = await (store as unknown as { readFeed: (p: unknown, o: unknown) => Promise<Array<{ txid: string; id: string }>> }).readFeed(position, { name: 'x', batchSize: 100, maxWaitMs: 100, claim });
      n += rows.length;
      const last = rows[rows.length - 1]!;
      position = { txid: last.txid, id: last.id };
    }
    console.log(claim ? 'with claim' : 'read only', n, ((performance.now() - t0) / 50).toFixed(2), 'ms per batch');
  }
  const plan = await pool.query(`explain analyze with batch as (select * from exp.outbox_events where txid < pg_snapshot_xmin(pg_current_snapshot()) and (txid, id) > ('0'::xid8, '00000000-0000-0000-0000-000000000000'::uuid) order by txid, id limit 100),
       claimed as (update exp.outbox_events as e set owner = 'fast', claimed_until = now() + 60000 * interval '1 millisecond' from batch where e.id = batch.id and (e.topic = any('{exp}'::text[]) or e.type = any('{}'::text[])) and e.status = 'pending' and (e.owner is null or (e.owner = 'fast' and e.claimed_until < now())) returning e.id)
       select batch.*, claimed.id is not null as fast_claimed from batch left join claimed on claimed.id = batch.id order by batch.txid, batch.id`);
  console.log(plan.rows.map((r) => r['QUERY PLAN']).join('\n'));
  await pool.end();
}
void main();
