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
    await pool.query(`drop schema if exists "${schema}_stats" cascade`);
    await pool.end();
  });

  /** The events table's columns a copy of a row takes as they are (all but `except`), as a list. */
  async function copyableColumns(inSchema: string, except: string[]): Promise<string> {
    const { rows } = await pool.query<{ c: string }>(
      `select string_agg(quote_ident(column_name), ',') as c from information_schema.columns where table_schema = $1 and table_name = 'outbox_events' and column_name <> all($2)`,
      [inSchema, except],
    );
    return rows[0]?.c as string;
  }

  /** The statements `work` sends through the pool, recorded as it runs. */
  async function statementsOf(work: () => Promise<unknown>): Promise<Array<{ text: string; values?: unknown[] }>> {
    const sent: Array<{ text: string; values?: unknown[] }> = [];
    const query = pool.query.bind(pool) as (text: string, values?: unknown[]) => Promise<unknown>;
    const recording = (text: string | { text: string; values?: unknown[] }, values?: unknown[]) => {
      sent.push(typeof text === 'string' ? { text, values } : text);
      return query(typeof text === 'string' ? text : text.text, typeof text === 'string' ? values : text.values);
    };
    pool.query = recording as typeof pool.query;
    try {
      await work();
    } finally {
      pool.query = query as typeof pool.query;
    }
    return sent;
  }

  /** Each plan of a statement, explained as it runs, in a transaction rolled back. */
  async function explainAnalyze(statement: { text: string; values?: unknown[] }): Promise<PlanNode[]> {
    const client = await pool.connect();
    try {
      await client.query('begin');
      const { rows } = await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`explain (analyze, format json) ${statement.text}`, statement.values);
      return (rows[0]?.['QUERY PLAN'] ?? []).map((p) => p.Plan);
    } finally {
      await client.query('rollback');
      client.release();
    }
  }

  test('a metrics scrape reads rows in proportion to the events not yet published, not to the published ones the outbox keeps', async () => {
    // Arrange: 8,000 published events kept (copies of one the store wrote and marked), 3 pending and
    // 2 stuck, the statistics taken.
    const statsSchema = `${schema}_stats`;
    const statsStore = new PostgresOutboxStore({ pool, schema: statsSchema });
    await statsStore.setup();
    const events = `"${statsSchema}".outbox_events`;
    const published = sampleEvent({ id: randomUUID() });
    await withPgTransaction(pool, (tx) => statsStore.insert(published, tx));
    await statsStore.markPublished({ eventId: published.id, topic: 'orders', partition: 0, offset: '0', publishedAt: new Date(), attempts: 1, alreadyPublished: false });
    const columns = await copyableColumns(statsSchema, ['id', 'txid', 'kafka_offset']);
    await pool.query(`insert into ${events} (id, kafka_offset, ${columns}) select gen_random_uuid(), g, ${columns} from generate_series(1, 7999) g, lateral (select * from ${events} limit 1) s`);
    const open = Array.from({ length: 5 }, () => sampleEvent({ id: randomUUID() }));
    for (const event of open) await withPgTransaction(pool, (tx) => statsStore.insert(event, tx));
    for (const event of open.slice(3)) await statsStore.transition(event.id, { from: 'pending', to: 'stuck', attempts: 1, lastError: 'x' });
    await pool.query(`analyze ${events}`);

    // Act: the statements a scrape's read sends, each explained as it runs.
    const statements = await statementsOf(() => statsStore.stats({ published: 'estimated' }));
    let handled = 0;
    for (const statement of statements) handled += (await explainAnalyze(statement)).reduce((sum, plan) => sum + rowsHandled(plan), 0);
    const stats = await statsStore.stats({ published: 'estimated' });

    // Assert: the unpublished events counted exactly, the published ones estimated, and a few rows
    // handled for the five open events (a count over every status reads all 8,005).
    expect(statements.length).toBeGreaterThan(0);
    expect(handled).toBeLessThanOrEqual(100);
    expect(stats.counts).toMatchObject({ pending: 3, stuck: 2, compensated: 0, discarded: 0 });
    expect(stats.counts.published).toBe(8_000);
    expect(stats.publishedEstimated).toBe(true);
  });

  test("the fast path's mark of a batch handles rows in proportion to the batch, not to the batch times the pending events, after the table was analyzed", async () => {
    // Arrange: 8,000 pending events (copies of one written by the store), the statistics taken, and
    // a fast claim of 500 of them, as a relay draining a backlog has.
    await store.setup();
    const events = `"${schema}".outbox_events`;
    await withPgTransaction(pool, (tx) => store.insert(sampleEvent({ id: randomUUID(), payload: { text: 'x'.repeat(200) } }), tx));
    const columns = await copyableColumns(schema, ['id', 'txid', 'key']);
    await pool.query(`insert into ${events} (id, key, ${columns}) select gen_random_uuid(), 'k' || (g % 20), ${columns} from generate_series(1, 7999) g, lateral (select * from ${events} limit 1) s`);
    await pool.query(`analyze ${events}`);
    const ids = (await pool.query<{ id: string }>(`select id from ${events} order by id limit 500`)).rows.map((r) => r.id);
    const token = randomUUID();
    expect(await store.claim(ids, 'fast', 60_000, token)).toHaveLength(500);
    const receipts = ids.map((eventId, i) => ({ eventId, topic: 'orders', partition: 0, offset: String(i), publishedAt: new Date(), attempts: 1, alreadyPublished: false }));

    // Act: the statement markPublishedMany sends, explained as it runs, and undone.
    const [plan] = await explainAnalyze(markManyStatement(t, receipts, token));

    // Assert: every claimed event marked, with a few rows handled per event (an index probe or two
    // each). A plan that rescans the receipts for each row of the table handles 500 × 500.
    expect(plan?.['Actual Rows']).toBe(500);
    expect(rowsHandled(plan as PlanNode)).toBeLessThanOrEqual(20 * 500);
  });
});
