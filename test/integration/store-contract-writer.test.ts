/**
 * The store contract, the writer's and the administrator's part, on both store adapters: the insert in
 * the caller's transaction and its bad input, set-up and migration, listing, counts and retention,
 * and the consumer inbox.
 */
import { OutboxErrorCode, type NewEvent } from '../../domain/outbox';
import { adapter, outbox, orderPlaced, storeContract } from '../support/store-contract';
import { waitFor } from '../support/servers';

const circular: Record<string, unknown> = { orderId: 'o-1', totalCents: 1 };
circular.self = circular;

/** Each bad input, the error code it must get, at add(). */
const INVALID_EVENTS: Array<[string, NewEvent, string]> = [
  ['an unregistered type', { ...orderPlaced('o-1'), type: 'orders.Unknown' }, OutboxErrorCode.unregisteredEventType],
  ['an unregistered schema version', { ...orderPlaced('o-1'), schemaVersion: 2 }, OutboxErrorCode.unregisteredEventType],
  ['a payload failing its schema', { ...orderPlaced('o-1'), payload: { orderId: 'o-1', totalCents: -5 } }, OutboxErrorCode.invalidPayload],
  ['a missing aggregate id', { ...orderPlaced('o-1'), aggregateId: '' }, OutboxErrorCode.invalidEvent],
  ['an empty message key', orderPlaced('o-1', { key: '' }), OutboxErrorCode.invalidKey],
  ['a payload over the size limit', { ...orderPlaced('o-1'), payload: { orderId: 'x'.repeat(2_000), totalCents: 1 } }, OutboxErrorCode.payloadTooLarge],
  ['a BigInt in the payload', { ...orderPlaced('o-1'), payload: { orderId: 'o-1', totalCents: 10n } }, OutboxErrorCode.notSerializable],
  ['a circular payload', { ...orderPlaced('o-1'), payload: circular }, OutboxErrorCode.notSerializable],
  ['a function in the payload', { ...orderPlaced('o-1'), payload: { orderId: 'o-1', totalCents: 1, f: () => 1 } }, OutboxErrorCode.notSerializable],
  ['a malformed traceparent', orderPlaced('o-1', { headers: { traceparent: 'nope' } }), OutboxErrorCode.invalidEvent],
];

storeContract(() => {
  describe("the writer's insert in the caller's transaction (OutboxWriterStore)", () => {
    test('an event for every committed transaction: the stored envelope is what add() returned', async () => {
      // Act
      const added = await adapter.inTransaction('o-1', (tx) => outbox.add(orderPlaced('o-1', { headers: { correlationId: 'c-9' } }), tx));

      // Assert
      const stored = await adapter.store.get(added.id);
      expect(stored).toEqual(added);
      expect(stored).toMatchObject({ status: 'pending', topic: 'orders.v1', key: 'o-1', aggregateType: 'order', attempts: 0 });
      expect(await adapter.businessIds()).toEqual(['o-1']);
    });

    test('no event for a rolled-back transaction', async () => {
      // Act
      let eventId = '';
      const failing = adapter.inTransaction('o-1', async (tx) => {
        eventId = (await outbox.add(orderPlaced('o-1'), tx)).id;
        throw new Error('business rule failed after add()');
      });

      // Assert
      await expect(failing).rejects.toThrow('business rule failed after add()');
      expect(eventId).not.toBe('');
      expect(await adapter.store.get(eventId)).toBeNull();
      expect(await adapter.businessIds()).toEqual([]);
    });

    test('add() outside an open transaction fails with NOT_IN_TRANSACTION and writes nothing', async () => {
      // Arrange
      const handles = await adapter.withoutTransaction();

      // Act
      const outcomes = await Promise.all(
        handles.map(async ([name, tx]) => {
          const added = await outbox.add(orderPlaced(`o-${name.length}`), tx).then(
            (event) => ({ name, code: 'ADDED', id: event.id }),
            (err: unknown) => ({ name, code: (err as { code?: string }).code ?? String(err), id: null }),
          );
          return { ...added, stored: added.id === null ? null : await adapter.store.get(added.id) };
        }),
      );

      // Assert
      expect(outcomes.map(({ name, code, stored }) => ({ name, code, stored }))).toEqual(
        handles.map(([name]) => ({ name, code: OutboxErrorCode.notInTransaction, stored: null })),
      );
    });

    test.each(INVALID_EVENTS)('bad input: %s gets its typed error at add() and aborts only its own transaction', async (_name, event, code) => {
      // Arrange
      const good = await adapter.inTransaction('good', (tx) => outbox.add(orderPlaced('good'), tx));

      // Act
      const bad = adapter.inTransaction('bad', (tx) => outbox.add(event, tx));

      // Assert
      await expect(bad).rejects.toMatchObject({ name: 'OutboxError', code });
      expect(await adapter.businessIds()).toEqual(['good']);
      expect(await adapter.store.get(good.id)).toMatchObject({ id: good.id, status: 'pending' });
    });
  });

  describe('set-up and migration (OutboxAdminStore.setup)', () => {
    test('migrate on a live database: a second run changes nothing and does not wait for an open transaction that wrote an event', async () => {
      // Arrange: a transaction that has written an event and stays open while setup runs again.
      let release: () => void = () => undefined;
      const held = new Promise<void>((resolve) => (release = resolve));
      let wrote: () => void = () => undefined;
      const written = new Promise<void>((resolve) => (wrote = resolve));
      const open = adapter.inTransaction('o-live', async (tx) => {
        const event = await outbox.add(orderPlaced('o-live'), tx);
        wrote();
        await held;
        return event;
      });
      await written;

      // Act: the same adapter's setup, on the schema or database it already set up.
      let changes: string[];
      try {
        changes = await adapter.store.setup();
      } finally {
        release();
      }
      const event = await open;

      // Assert: nothing to change, and the open transaction committed after it.
      expect(changes).toEqual([]);
      expect(await adapter.store.get(event.id)).toMatchObject({ status: 'pending' });
    });

    test('migrate brings a store set up by an older release up to date, adding only what is missing', async () => {
      // Arrange
      const expected = await adapter.olderRelease();

      // Act
      const changes = await adapter.store.setup();
      const again = await adapter.store.setup();

      // Assert
      expect(changes).toEqual(expected);
      expect(again).toEqual([]);
      await expect(adapter.store.checkSetUp()).resolves.toBeUndefined();
      const added = await adapter.inTransaction('o-after', (tx) => outbox.add(orderPlaced('o-after'), tx));
      expect(await adapter.store.get(added.id)).toEqual(added);
    });
  });

  describe('listing, counts and retention (OutboxAdminStore)', () => {
    /** The receipt of an event's publication at an offset of partition 0. */
    const published = (eventId: string, at: Date, offset: string) => ({ eventId, topic: 'orders.v1', partition: 0, offset, publishedAt: at, attempts: 1, alreadyPublished: false });

    test('list, stats and purge: by status and type, counts with the oldest pending, retention of published events', async () => {
      // Arrange
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await adapter.inTransaction(`o-${i}`, (tx) => outbox.add(orderPlaced(`o-${i}`), tx))).id);
      await adapter.store.markPublished(published(ids[0] ?? '', new Date('2026-01-01T00:00:00Z'), '1'));
      await adapter.store.markPublished(published(ids[1] ?? '', new Date(), '2'));
      await adapter.store.transition(ids[2] ?? '', { from: 'pending', to: 'stuck', attempts: 1, lastError: 'x' });

      // Act
      const stuck = await adapter.store.list({ status: 'stuck', type: 'orders.OrderPlaced', limit: 10 });
      const otherType = await adapter.store.list({ type: 'orders.Other', limit: 10 });
      const before = await adapter.store.stats();
      const purged = await adapter.store.purgePublished(new Date('2026-01-02T00:00:00Z'));
      const after = await adapter.store.stats();

      // Assert
      expect(stuck.map((e) => e.id)).toEqual([ids[2]]);
      expect(otherType).toEqual([]);
      expect(before.counts).toEqual({ pending: 1, published: 2, stuck: 1, compensated: 0, discarded: 0 });
      expect(before.oldestPending?.id).toBe(ids[3]);
      expect(purged).toBe(1);
      expect(after.counts.published).toBe(1);
      expect(await adapter.store.get(ids[0] ?? '')).toBeNull();
    });

    test('stats with the published count estimated (a metrics scrape): every other status counted exactly at once, the published count the store keeps of its own, which follows writes and purges', async () => {
      // Arrange
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await adapter.inTransaction(`e-${i}`, (tx) => outbox.add(orderPlaced(`e-${i}`), tx))).id);
      for (const [i, id] of ids.slice(0, 3).entries()) await adapter.store.markPublished(published(id, new Date('2026-01-01T00:00:00Z'), String(i)));
      await adapter.store.transition(ids[3] ?? '', { from: 'pending', to: 'stuck', attempts: 1, lastError: 'x' });
      const estimatedMatchesExact = async () => {
        const [estimated, exact] = [await adapter.store.stats({ published: 'estimated' }), await adapter.store.stats()];
        return estimated.counts.published === exact.counts.published ? { estimated, exact } : undefined;
      };

      // Act: PostgreSQL's statistics take up to its idle flush (10 s) to count the last writes.
      const estimated = await adapter.store.stats({ published: 'estimated' });
      const exact = await adapter.store.stats();
      const settled = await waitFor(estimatedMatchesExact, { what: 'the estimated published count to follow the writes' });
      const purged = await adapter.store.purgePublished(new Date('2026-01-02T00:00:00Z'));
      const afterPurge = await waitFor(estimatedMatchesExact, { what: 'the estimated published count to follow the purge' });

      // Assert
      expect(estimated.publishedEstimated).toBe(true);
      expect(exact.publishedEstimated).toBeUndefined();
      expect({ ...estimated.counts, published: 0 }).toEqual({ ...exact.counts, published: 0 });
      expect(estimated.oldestPending).toEqual(exact.oldestPending);
      expect(settled.estimated.counts).toEqual({ pending: 1, published: 3, stuck: 1, compensated: 0, discarded: 0 });
      expect(purged).toBe(3);
      expect(afterPurge.estimated.counts).toEqual({ pending: 1, published: 0, stuck: 1, compensated: 0, discarded: 0 });
    });

    test('purge deletes in batches of its own statements, every old published event and nothing else', async () => {
      // Arrange: five published long ago, one published now, one pending.
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) ids.push((await adapter.inTransaction(`p-${i}`, (tx) => outbox.add(orderPlaced(`p-${i}`), tx))).id);
      const old = new Date('2026-01-01T00:00:00Z');
      for (const [i, id] of ids.slice(0, 6).entries()) await adapter.store.markPublished(published(id, i < 5 ? old : new Date(), String(i)));

      // Act
      const purged = await adapter.store.purgePublished(new Date('2026-01-02T00:00:00Z'), { batchSize: 2 });

      // Assert
      expect(purged).toBe(5);
      const left = await Promise.all(ids.map((id) => adapter.store.get(id)));
      expect(left.map((e) => e?.status ?? null)).toEqual([null, null, null, null, null, 'published', 'pending']);
    });
  });

  describe('the consumer inbox', () => {
    test('the inbox applies an event once per consumer, and records nothing when the effects fail', async () => {
      // Act
      const first = await adapter.inbox.applyOnce('billing', 'evt-1', (tx) => adapter.writeBusiness(tx, 'effect-1'));
      const again = await adapter.inbox.applyOnce('billing', 'evt-1', (tx) => adapter.writeBusiness(tx, 'effect-1-again'));
      const otherConsumer = await adapter.inbox.applyOnce('shipping', 'evt-1', (tx) => adapter.writeBusiness(tx, 'effect-2'));
      const failing = adapter.inbox.applyOnce('billing', 'evt-2', async (tx) => {
        await adapter.writeBusiness(tx, 'effect-3');
        throw new Error('effects failed');
      });
      await expect(failing).rejects.toThrow('effects failed');
      const retried = await adapter.inbox.applyOnce('billing', 'evt-2', (tx) => adapter.writeBusiness(tx, 'effect-3'));

      // Assert
      expect([first, again, otherConsumer, retried]).toEqual(['applied', 'duplicate', 'applied', 'applied']);
      expect(await adapter.businessIds()).toEqual(['effect-1', 'effect-2', 'effect-3']);
    });
  });
});
