/**
 * `txoutbox migrate` on a live PostgreSQL database: a step that needs a lock a running transaction
 * holds waits at most SETUP_LOCK_TIMEOUT, then fails with SETUP_BLOCKED, keeping nothing of its
 * transaction, and a run after that transaction ends completes. PostgreSQL only: MongoDB's index
 * builds take no lock that setup waits for.
 */
import { Pool } from 'pg';
import { OutboxErrorCode } from '../../domain/outbox';
import { PostgresOutboxStore } from '../../domain/stores/postgres';
import { testServers, uniqueName } from '../support/servers';

describe('PostgreSQL migrate on a live database', () => {
  const pool = new Pool({ connectionString: testServers().pgUrl, max: 4 });
  const schema = uniqueName('m').replace(/-/g, '_');
  const store = new PostgresOutboxStore({ pool, schema });

  afterAll(async () => {
    await pool.query(`drop schema if exists "${schema}" cascade`);
    await pool.end();
  });

  test('a step blocked by a running transaction fails with SETUP_BLOCKED after the lock timeout, keeping nothing; the next run completes', async () => {
    // Arrange: a store of an older release (a column missing), and a reader's transaction open on it.
    await store.setup();
    await pool.query(`alter table "${schema}".outbox_events drop column claimed_until`);
    const reader = await pool.connect();
    await reader.query('begin');
    await reader.query(`select 1 from "${schema}".outbox_events limit 1`);

    // Act
    let blocked: unknown;
    try {
      blocked = await store.setup().then(
        () => null,
        (err: unknown) => err,
      );
    } finally {
      await reader.query('commit');
      reader.release();
    }
    const after = await store.setup();

    // Assert
    expect(blocked).toMatchObject({ code: OutboxErrorCode.setupBlocked, message: expect.stringContaining('kept: nothing. Run it again.') });
    expect(after).toEqual([`added column "${schema}".outbox_events.claimed_until`]);
    await expect(store.checkSetUp()).resolves.toBeUndefined();
  });
});
