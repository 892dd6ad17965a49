/**
 * `outbox.add()` on PostgreSQL writes through named prepared statements (PostgresStoreOptions
 * .preparedStatements): each connection parses and plans them once. A connection that lost them, as
 * behind PgBouncer in transaction mode before 1.21, fails add() with INVALID_CONFIG naming the
 * option, writing nothing; `preparedStatements: false` prepares none; a column added by migrate does
 * not break a connection's prepared insert. PostgreSQL only: MongoDB has no prepared statements.
 */
import { Pool, type PoolClient } from 'pg';
import { z } from 'zod';
import { createEventRegistry, createOutbox, defineEventType, OutboxErrorCode } from '../../domain/outbox';
import { PostgresOutboxStore } from '../../domain/stores/postgres';
import { testServers, uniqueName } from '../support/servers';

const registry = createEventRegistry([
  defineEventType({ type: 'prep.Counted', schemaVersion: 1, aggregateType: 'a', topic: 'prep.v1', schema: z.object({ n: z.number() }) }),
  defineEventType({ type: 'prep.Ordered', schemaVersion: 1, aggregateType: 'a', topic: 'prep-ordered.v1', schema: z.object({ n: z.number() }), ordering: 'per-key' }),
]);

describe('PostgreSQL add() through prepared statements', () => {
  const pool = new Pool({ connectionString: testServers().pgUrl, max: 4 });
  const schemas: string[] = [];

  async function outboxIn(options: { preparedStatements?: boolean } = {}) {
    const schema = uniqueName('prep').replace(/-/g, '_');
    schemas.push(schema);
    const store = new PostgresOutboxStore({ pool, schema, ...options });
    await store.setup();
    return { schema, store, outbox: createOutbox({ store, registry, source: 'prep-test' }) };
  }

  /** Writes one event of `type` in a transaction of its own on `client`. */
  async function addOn(client: PoolClient, outbox: Awaited<ReturnType<typeof outboxIn>>['outbox'], type: string, n: number) {
    await client.query('begin');
    try {
      const event = await outbox.add({ type, aggregateId: 'a-1', payload: { n } }, { client });
      await client.query('commit');
      return event;
    } catch (err) {
      await client.query('rollback');
      throw err;
    }
  }

  /** The statements txoutbox prepared on `client` for `schema` (the pool's connections serve every test). */
  async function preparedOn(client: PoolClient, schema: string): Promise<string[]> {
    const { rows } = await client.query<{ statement: string }>(
      `select statement from pg_prepared_statements where name like 'txoutbox_%' and strpos(statement, $1) > 0 order by statement`,
      [`"${schema}".`],
    );
    return rows.map((r) => r.statement.replace(/\s+/g, ' '));
  }

  afterAll(async () => {
    for (const schema of schemas) await pool.query(`drop schema if exists "${schema}" cascade`);
    await pool.end();
  });

  test('each connection prepares the insert, and an ordered event the sequence, once; the events are written in order', async () => {
    // Arrange
    const { schema, store, outbox } = await outboxIn();
    const client = await pool.connect();

    // Act
    let prepared: string[];
    let written;
    try {
      written = [await addOn(client, outbox, 'prep.Ordered', 1), await addOn(client, outbox, 'prep.Ordered', 2), await addOn(client, outbox, 'prep.Counted', 3)];
      prepared = await preparedOn(client, schema);
    } finally {
      client.release();
    }

    // Assert
    expect(prepared).toEqual([expect.stringContaining(`insert into "${schema}".outbox_events (id,`), expect.stringContaining(`insert into "${schema}".outbox_key_sequences`)]);
    expect(written.map((e) => e.sequence)).toEqual([1, 2, null]);
    const stored = await Promise.all(written.map((e) => store.get(e.id)));
    expect(stored.map((e) => e?.payload)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
  });

  test('with preparedStatements: false, add() prepares nothing on the connection', async () => {
    // Arrange
    const { schema, store, outbox } = await outboxIn({ preparedStatements: false });
    const client = await pool.connect();

    // Act
    let prepared: string[];
    let written;
    try {
      written = await addOn(client, outbox, 'prep.Ordered', 1);
      prepared = await preparedOn(client, schema);
    } finally {
      client.release();
    }

    // Assert
    expect(prepared).toEqual([]);
    expect(await store.get(written.id)).toMatchObject({ sequence: 1, payload: { n: 1 } });
  });

  test('a connection that lost its prepared statements (a pooler on another server connection) fails add() with INVALID_CONFIG naming the option, and writes nothing', async () => {
    // Arrange: what PgBouncer in transaction mode before 1.21 does, a server connection that never
    // saw the statements pg prepared on "its" connection.
    const { store, outbox } = await outboxIn();
    const client = await pool.connect();
    let failure: unknown;
    try {
      await addOn(client, outbox, 'prep.Counted', 1);
      await client.query('deallocate all');

      // Act
      failure = await addOn(client, outbox, 'prep.Counted', 2).then(
        () => null,
        (err: unknown) => err,
      );
    } finally {
      client.release(true);
    }

    // Assert
    expect(failure).toMatchObject({ code: OutboxErrorCode.invalidConfig, message: expect.stringContaining('preparedStatements: false') });
    expect((await store.stats()).counts.pending).toBe(1);
  });

  test("a column added by migrate while a connection holds the prepared insert does not fail that connection's next add()", async () => {
    // Arrange
    const { schema, store, outbox } = await outboxIn();
    const client = await pool.connect();
    let second;
    try {
      await addOn(client, outbox, 'prep.Counted', 1);
      await pool.query(`alter table "${schema}".outbox_events add column added_later text`);

      // Act
      second = await addOn(client, outbox, 'prep.Counted', 2);
    } finally {
      client.release();
    }

    // Assert
    expect(await store.get(second.id)).toMatchObject({ payload: { n: 2 } });
    expect((await store.stats()).counts.pending).toBe(2);
  });
});
