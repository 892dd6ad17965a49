/**
 * The processes' store round-trips metric (txoutbox_store_round_trips_total) counts what really goes
 * to the database: each MongoDB command, each PostgreSQL statement, once, by its name.
 */
import { z } from 'zod';
import { createEventRegistry, createOutbox, defineEventType } from '../../domain/outbox';
import { loadConfig } from '../../workers/process/config';
import { storeFromConfig } from '../../workers/process/store-from-config';
import { pipelineStore, STORE_KINDS, StoreKind } from '../support/pipeline-store';

const registry = createEventRegistry([defineEventType({ type: 'trips.Counted', schemaVersion: 1, aggregateType: 'a', topic: 'trips.v1', schema: z.object({ n: z.number() }) })]);

describe.each(STORE_KINDS)('store round trips (%s store)', (kind) => {
  const db = pipelineStore(kind);

  beforeAll(async () => {
    await db.setup();
  });

  afterAll(async () => {
    await db.teardown();
  });

  it('counts each request to the store once, by command', async () => {
    // Arrange
    const counted: string[] = [];
    const { store, close } = await storeFromConfig(loadConfig({ ...process.env, ...db.env }), undefined, (command) => counted.push(command));
    try {
      counted.length = 0;

      // Act: two reads of one event, one of a key's open sequence.
      await store.get('00000000-0000-7000-8000-000000000000');
      await store.get('00000000-0000-7000-8000-000000000001');
      await store.nextOpenSequence('a-topic', 'a-key');

      // Assert
      const read = kind === StoreKind.mongodb ? 'find' : 'select';
      expect(counted).toEqual([read, read, read]);
    } finally {
      await close();
    }
  });

  it("takes one request for a workflow's claim of an event nobody owns, with the event or without it, and two for the outbox's counts and lag", async () => {
    // Arrange
    const counted: string[] = [];
    const { store, close } = await storeFromConfig(loadConfig({ ...process.env, ...db.env }), undefined, (command) => counted.push(command));
    try {
      const outbox = createOutbox({ store: db.store, registry, source: 'round-trips-test' });
      const event = await db.inTransaction((tx) => outbox.add({ type: 'trips.Counted', aggregateId: 'a-1', payload: { n: 1 } }, tx));
      const other = await db.inTransaction((tx) => outbox.add({ type: 'trips.Counted', aggregateId: 'a-2', payload: { n: 2 } }, tx));
      counted.length = 0;

      // Act
      const claimed = await store.claim([event.id], 'workflow');
      const claimTrips = counted.splice(0);
      const withEvent = await store.claimForWorkflow(other.id);
      const withEventTrips = counted.splice(0);
      const stats = await store.stats();

      // Assert
      expect(claimed).toEqual([event.id]);
      expect(claimTrips).toEqual(['update']);
      expect(withEvent).toEqual({ claimed: true, event: other });
      expect(withEventTrips).toEqual([kind === StoreKind.mongodb ? 'findAndModify' : 'with']); // PostgreSQL: the claim's update and the row's read, one statement
      expect(stats.counts.pending).toBe(2);
      expect(stats.oldestPending?.id).toBe(event.id);
      expect(counted).toEqual(kind === StoreKind.mongodb ? ['aggregate', 'find'] : ['select', 'select']);
    } finally {
      await close();
    }
  });
});
