/**
 * How the PostgreSQL change feed is woken. A NOTIFY makes its transaction's commit take a lock held
 * across the whole database until the commit is flushed, so every notifying writer commits one after
 * another. The outbox's writers therefore NOTIFY only while a feed waits for them; a feed busy
 * reading finds their events without it. PostgreSQL only: MongoDB's change streams need no trigger.
 */
import { randomUUID } from 'node:crypto';
import { Client, Pool } from 'pg';
import { PostgresOutboxStore, withPgTransaction } from '../../domain/stores/postgres';
import type { FeedBatch } from '../../domain/outbox';
import { sampleEvent } from '../support/sample-event';
import { testServers, uniqueName, waitFor } from '../support/servers';

describe('the PostgreSQL change feed is woken only when it waits', () => {
  const pool = new Pool({ connectionString: testServers().pgUrl, max: 6 });
  const schema = uniqueName('wake').replace(/-/g, '_');
  const store = new PostgresOutboxStore({ pool, schema });
  const listener = new Client({ connectionString: testServers().pgUrl });
  const heard: string[] = [];

  beforeAll(async () => {
    await store.setup();
    await listener.connect();
    listener.on('notification', (n) => heard.push(n.channel));
    await listener.query(`listen ${store.channel}`);
  });

  afterAll(async () => {
    await listener.end();
    await pool.query(`drop schema if exists "${schema}" cascade`);
    await pool.end();
  });

  /** Notifications sent by commits before this call: the server delivers them before it answers. */
  async function notificationsSoFar(): Promise<number> {
    await listener.query('select 1');
    return heard.length;
  }

  const write = async (): Promise<void> => void (await withPgTransaction(pool, (tx) => store.insert(sampleEvent({ id: randomUUID() }), tx)));

  test("a write sends no NOTIFY while no feed waits (its commit does not queue behind other writers' on the notify lock), and wakes a feed that waits", async () => {
    // Arrange: no feed open.
    const before = await notificationsSoFar();

    // Act 1: two writes with nobody waiting.
    await write();
    await write();
    const unheard = (await notificationsSoFar()) - before;

    // Arrange 2: a feed that read everything and waits, with a poll far longer than the test.
    const abort = new AbortController();
    const batches = store.openFeed({ name: uniqueName('wake-feed'), batchSize: 10, maxWaitMs: 600_000 }).batches(abort.signal)[Symbol.asyncIterator]();
    await batches.next(); // positioned ("now")
    const next = batches.next();
    const feedWaits = async (): Promise<boolean> =>
      (await pool.query(`select 1 from pg_locks where locktype = 'advisory' and mode = 'ExclusiveLock' and granted and ((classid::bigint << 32) | objid::bigint) = hashtext($1)::bigint`, [store.feedWaitLock])).rows.length > 0;
    await waitFor(feedWaits, {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: 'the feed waiting',
    });
    const waiting = await notificationsSoFar();

    // Act 2: a write while it waits.
    await write();
    const woke = await next;
    const heardWaiting = (await notificationsSoFar()) - waiting;
    abort.abort();
    await batches.return?.();

    // Assert
    expect(unheard).toBe(0);
    expect(heardWaiting).toBe(1);
    expect((woke.value as FeedBatch).events).toHaveLength(1);
  });
});
