/**
 * The PostgreSQL adapter's plans: what a statement costs the server must grow with the batch it
 * handles, whatever the planner's statistics say. Measured as the rows the plan's nodes produce and
 * throw away (EXPLAIN ANALYZE, in a transaction rolled back), not as time. PostgreSQL only: the
 * MongoDB adapter marks each event with an `updateOne` by `_id`.
 */
import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { PostgresOutboxStore, withPgTransaction } from '../../domain/stores/postgres';
import { markManyStatement } from '../../domain/stores/postgres/claims';
import { pgStoreContext } from '../../domain/stores/postgres/context';
import { sampleEvent } from '../support/sample-event';
import { testServers, uniqueName } from '../support/servers';

interface PlanNode {
  'Node Type': string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Join Filter'?: number;
  Plans?: PlanNode[];
}

/** Every row each node of the plan produced or discarded, over all its loops. */
function rowsHandled(node: PlanNode): number {
  const own = (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Join Filter'] ?? 0)) * node['Actual Loops'];
  return own + (node.Plans ?? []).reduce((sum, child) => sum + rowsHandled(child), 0);
}

describe('PostgreSQL statements whose cost follows their batch', () => {
  const pool = new Pool({ connectionString: testServers().pgUrl, max: 4 });
  const schema = uniqueName('plans').replace(/-/g, '_');
  const store = new PostgresOutboxStore({ pool, schema });
  const t = pgStoreContext({ pool, schema });

  afterAll(async () => {
    await pool.query(`drop schema if exists "${schema}" cascade`);
    await pool.end();
  });

  test("the fast path's mark of a batch handles rows in proportion to the batch, not to the batch times the pending events, after the table was analyzed", async () => {
    // Arrange: 8,000 pending events (copies of one written by the store), the statistics taken, and
    // a fast claim of 500 of them, as a relay draining a backlog has.
    await store.setup();
    const events = `"${schema}".outbox_events`;
    await withPgTransaction(pool, (tx) => store.insert(sampleEvent({ id: randomUUID(), payload: { text: 'x'.repeat(200) } }), tx));
    const columns = (
      await pool.query<{ c: string }>(
        `select string_agg(quote_ident(column_name), ',') as c from information_schema.columns where table_schema = $1 and table_name = 'outbox_events' and column_name not in ('id', 'txid', 'key')`,
        [schema],
      )
    ).rows[0]?.c as string;
    await pool.query(`insert into ${events} (id, key, ${columns}) select gen_random_uuid(), 'k' || (g % 20), ${columns} from generate_series(1, 7999) g, lateral (select * from ${events} limit 1) s`);
    await pool.query(`analyze ${events}`);
    const ids = (await pool.query<{ id: string }>(`select id from ${events} order by id limit 500`)).rows.map((r) => r.id);
    const token = randomUUID();
    expect(await store.claim(ids, 'fast', 60_000, token)).toHaveLength(500);
    const receipts = ids.map((eventId, i) => ({ eventId, topic: 'orders', partition: 0, offset: String(i), publishedAt: new Date(), attempts: 1, alreadyPublished: false }));

    // Act: the statement markPublishedMany sends, explained as it runs, and undone.
    const statement = markManyStatement(t, receipts, token);
    const client = await pool.connect();
    let plan: { Plan: PlanNode };
    let marked: number;
    try {
      await client.query('begin');
      const { rows } = await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`explain (analyze, format json) ${statement.text}`, statement.values);
      plan = rows[0]?.['QUERY PLAN'][0] as { Plan: PlanNode };
      marked = plan.Plan['Actual Rows'];
    } finally {
      await client.query('rollback');
      client.release();
    }

    // Assert: every claimed event marked, with a few rows handled per event (an index probe or two
    // each). A plan that rescans the receipts for each row of the table handles 500 × 500.
    expect(marked).toBe(500);
    expect(rowsHandled(plan.Plan)).toBeLessThanOrEqual(20 * 500);
  });
});
