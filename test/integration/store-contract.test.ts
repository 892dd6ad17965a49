/**
 * One contract, both store adapters: MongoDB (the server the scripts start, or the replica set
 * MONGODB_URI names) and PostgreSQL. What the relay and the activities rely on is tested once.
 */
import { z } from 'zod';
import {
  createEventRegistry,
  createOutbox,
  DEFAULT_PARTITION_COUNT,
  defineEventType,
  minEventIdAt,
  partitionOf,
  OutboxErrorCode,
  type FeedBatch,
  type FeedGap,
  type NewEvent,
  type Outbox,
  type OutboxEvent,
} from '../../domain/outbox';
import { mongoAdapter, postgresAdapter, type AdapterFactory, type AdapterUnderTest } from '../support/store-adapters';
import { uniqueName, waitFor } from '../support/servers';

const registry = createEventRegistry([
  defineEventType({
    type: 'orders.OrderPlaced',
    schemaVersion: 1,
    aggregateType: 'order',
    topic: 'orders.v1',
    schema: z.object({ orderId: z.string(), totalCents: z.number().int().nonnegative() }),
  }),
  defineEventType({
    type: 'orders.LineAdded',
    schemaVersion: 1,
    aggregateType: 'order',
    topic: 'orders.v1',
    ordering: 'per-key',
    schema: z.object({ orderId: z.string(), line: z.number().int() }),
  }),
]);

function orderPlaced(orderId: string, extra: Partial<NewEvent> = {}): NewEvent {
  return { type: 'orders.OrderPlaced', aggregateId: orderId, payload: { orderId, totalCents: 100 }, ...extra };
}

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

async function firstBatchWithEvents(batches: AsyncIterator<FeedBatch>): Promise<FeedBatch> {
  for (;;) {
    const next = await batches.next();
    if (next.done) throw new Error('feed ended');
    if (next.value.events.length > 0) return next.value;
  }
}

function contract(factory: AdapterFactory): void {
  let adapter: AdapterUnderTest<unknown>;
  let outbox: Outbox<unknown>;

  beforeEach(async () => {
    adapter = await factory.create();
    outbox = createOutbox({ store: adapter.store, registry, source: 'contract-tests', maxPayloadBytes: 1_000 });
  });

  afterEach(async () => {
    await adapter.teardown();
  });

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

  describe("one event at a time: marks, claims, escalation (OutboxEventStore, the worker's activities; the fast path's claims)", () => {
    /** An OrderPlaced event for order `id`, committed. */
    const add = (id: string) => adapter.inTransaction(id, (tx) => outbox.add(orderPlaced(id), tx));

    test('markPublished changes a pending event once, and tells a repeat and an unknown id apart', async () => {
      // Arrange
      const added = await adapter.inTransaction('o-1', (tx) => outbox.add(orderPlaced('o-1'), tx));
      const receipt = { eventId: added.id, topic: 'orders.v1', partition: 2, offset: '41', publishedAt: new Date(), attempts: 1, alreadyPublished: false };

      // Act
      const first = await adapter.store.markPublished(receipt);
      const second = await adapter.store.markPublished({ ...receipt, offset: '99' });
      const unknown = await adapter.store.markPublished({ ...receipt, eventId: '01a21b9e-0000-7000-8000-000000000000' });

      // Assert
      expect([first, second, unknown]).toEqual(['marked', 'already-published', 'not-found']);
      expect(await adapter.store.get(added.id)).toMatchObject({ status: 'published', kafka: { partition: 2, offset: '41' }, attempts: 1 });
    });

    test('one Kafka position is one publication: a second event recorded at a taken topic, partition and offset is refused and stays unpublished, and in a batch the others are marked all the same', async () => {
      // Arrange
      const token = 'f5a0b7c2-0000-4000-8000-000000000001';
      const first = await adapter.inTransaction('o-1', (tx) => outbox.add(orderPlaced('o-1'), tx));
      const second = await adapter.inTransaction('o-2', (tx) => outbox.add(orderPlaced('o-2'), tx));
      const third = await adapter.inTransaction('o-3', (tx) => outbox.add(orderPlaced('o-3'), tx));
      const fourth = await adapter.inTransaction('o-4', (tx) => outbox.add(orderPlaced('o-4'), tx));
      const at = { topic: 'orders.v1', partition: 0, offset: '745', publishedAt: new Date(), attempts: 1, alreadyPublished: false };
      await adapter.store.markPublished({ ...at, eventId: first.id });
      expect(await adapter.store.claim([third.id, fourth.id], 'fast', 60_000, token)).toHaveLength(2);

      // Act: alone, and in a batch beside an event at a free position.
      const single = adapter.store.markPublished({ ...at, eventId: second.id });
      const many = await adapter.store.markPublishedMany([{ ...at, offset: '744', eventId: fourth.id }, { ...at, eventId: third.id }], token);

      // Assert
      await expect(single).rejects.toMatchObject({ name: 'OutboxError', code: OutboxErrorCode.kafkaPositionTaken, retriable: true });
      expect(many).toEqual({ marked: 1, positionTaken: [{ ...at, eventId: third.id }] });
      expect(await adapter.store.get(second.id)).toMatchObject({ status: 'pending', kafka: null });
      expect(await adapter.store.get(third.id)).toMatchObject({ status: 'pending', kafka: null });
      expect(await adapter.store.get(fourth.id)).toMatchObject({ status: 'published', kafka: { partition: 0, offset: '744' } });
      expect(await adapter.store.markPublished({ ...at, offset: '746', eventId: second.id })).toBe('marked');
    });

    test('a position Kafka reused (the caller read its own record there) is recorded over the stale one, which stays published with where it had been', async () => {
      // Arrange: the first event was published to a log that is gone (a topic deleted and created again).
      const stale = await adapter.inTransaction('o-1', (tx) => outbox.add(orderPlaced('o-1'), tx));
      const fresh = await adapter.inTransaction('o-2', (tx) => outbox.add(orderPlaced('o-2'), tx));
      const at = { topic: 'orders.v1', partition: 1, offset: '0', publishedAt: new Date(), attempts: 1, alreadyPublished: false };
      await adapter.store.markPublished({ ...at, eventId: stale.id });

      // Act
      const marked = await adapter.store.markPublished({ ...at, eventId: fresh.id }, { supersede: true });

      // Assert
      expect(marked).toBe('marked');
      expect(await adapter.store.get(fresh.id)).toMatchObject({ status: 'published', kafka: { partition: 1, offset: '0' } });
      expect(await adapter.store.get(stale.id)).toMatchObject({ status: 'published', kafka: null, lastError: expect.stringContaining(`orders.v1/1@0 for event ${fresh.id}`) });
    });

    test('ownership: a fast claim shuts workflows out until released or its lease ends; a workflow claim is kept', async () => {
      // Arrange
      const token = 'f5a0b7c2-0000-4000-8000-000000000002';
      const [a, b, c, d] = [await add('a'), await add('b'), await add('c'), await add('d')];
      const { store } = adapter;
      const sorted = (ids: string[]) => [...ids].sort();

      // Act + Assert
      expect(sorted(await store.claim([a.id, b.id], 'fast', 60_000, token))).toEqual(sorted([a.id, b.id]));
      expect(await store.claim([a.id], 'fast', 60_000, token)).toEqual([]); // a live fast lease, even the claimant's own
      expect(await store.claim([a.id], 'workflow')).toEqual([]); // the fast path owns it
      expect(await store.claim([c.id], 'workflow')).toEqual([c.id]);
      expect(await store.claim([c.id], 'fast', 60_000, token)).toEqual([]); // a workflow owns it for good
      expect(await store.claim([c.id], 'workflow')).toEqual([c.id]); // its next attempt keeps it
      await store.release([a.id], token);
      expect(await store.claim([a.id], 'workflow')).toEqual([a.id]); // handed over
      expect(await store.claim([d.id], 'fast', 1, token)).toEqual([d.id]);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await store.claim([d.id], 'workflow')).toEqual([d.id]); // the lease ran out
      expect(await store.get(a.id)).toEqual(a); // ownership is the store's, not part of the envelope

      const published = { topic: 'orders.v1', partition: 1, publishedAt: new Date(), attempts: 1, alreadyPublished: false };
      expect(await store.markPublishedMany([{ ...published, eventId: b.id, offset: '7' }], token)).toEqual({ marked: 1, positionTaken: [] });
      expect((await store.markPublishedMany([{ ...published, eventId: b.id, offset: '8' }], token)).marked).toBe(0); // already published
      expect(await store.claim([b.id], 'workflow')).toEqual([]); // published: nothing left to own
      expect(await store.get(b.id)).toMatchObject({ status: 'published', kafka: { partition: 1, offset: '7' } });
    });

    test('a claim of several events returns exactly the ones it got, whoever holds the others', async () => {
      // Arrange: a published event, one under a live fast lease, one a workflow owns, two nobody owns.
      const token = 'f5a0b7c2-0000-4000-8000-000000000003';
      const [published, leased, owned, free1, free2, free3] = [await add('p'), await add('l'), await add('w'), await add('f1'), await add('f2'), await add('f3')];
      const { store } = adapter;
      await store.markPublished({ eventId: published.id, topic: 'orders.v1', partition: 0, offset: '90', publishedAt: new Date(), attempts: 1, alreadyPublished: false });
      expect(await store.claim([leased.id], 'fast', 60_000, token)).toEqual([leased.id]);
      expect(await store.claim([owned.id], 'workflow')).toEqual([owned.id]);
      const sorted = (ids: string[]) => [...ids].sort();

      // Act
      const fast = await store.claim([published.id, leased.id, owned.id, free1.id, free2.id], 'fast', 60_000, token);
      const workflow = await store.claim([published.id, leased.id, owned.id, free3.id, free3.id, 'f5a0b7c2-0000-4000-8000-00000000ffff'], 'workflow');

      // Assert: neither got what another holds, what is published, or an event that does not exist.
      expect(sorted(fast)).toEqual(sorted([free1.id, free2.id]));
      expect(sorted(workflow)).toEqual(sorted([owned.id, free3.id]));
    });

    test("a workflow's claim of one event answers with the event as it stands, and gets what claim() would: not an event under a live fast lease, published or unknown; a stuck one, one it owns, one whose fast lease ended", async () => {
      // Arrange
      const token = 'f5a0b7c2-0000-4000-8000-000000000004';
      const [free, leased, lapsed, published, stuck] = [await add('cf'), await add('cl'), await add('cx'), await add('cp'), await add('cs')];
      const { store } = adapter;
      expect(await store.claim([leased.id], 'fast', 60_000, token)).toEqual([leased.id]);
      expect(await store.claim([lapsed.id], 'fast', 1, token)).toEqual([lapsed.id]);
      await store.markPublished({ eventId: published.id, topic: 'orders.v1', partition: 0, offset: '91', publishedAt: new Date(), attempts: 1, alreadyPublished: false });
      expect(await store.transition(stuck.id, { from: 'pending', to: 'stuck', attempts: 3, lastError: 'Kafka down' })).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 50));

      // Act
      const got = {
        free: await store.claimForWorkflow(free.id),
        again: await store.claimForWorkflow(free.id),
        leased: await store.claimForWorkflow(leased.id),
        lapsed: await store.claimForWorkflow(lapsed.id),
        published: await store.claimForWorkflow(published.id),
        stuck: await store.claimForWorkflow(stuck.id),
        unknown: await store.claimForWorkflow('f5a0b7c2-0000-4000-8000-00000000fffe'),
      };

      // Assert
      expect(got.free).toEqual({ claimed: true, event: free });
      expect(got.again).toEqual({ claimed: true, event: free }); // a workflow's next attempt keeps its claim
      expect(got.leased).toEqual({ claimed: false, event: leased }); // the fast path publishes it
      expect(got.lapsed).toEqual({ claimed: true, event: lapsed }); // its lease ran out: handed over
      expect(got.published).toMatchObject({ claimed: false, event: { id: published.id, status: 'published', kafka: { partition: 0, offset: '91' } } });
      expect(got.stuck).toMatchObject({ claimed: true, event: { id: stuck.id, status: 'stuck', lastError: 'Kafka down' } });
      expect(got.unknown).toEqual({ claimed: false, event: null });
      expect(await store.claim([free.id], 'fast', 60_000, token)).toEqual([]); // a workflow owns it for good
    });

    test('fencing: a fast claimant whose claim lapsed and was taken by another can neither release it nor record its publication', async () => {
      // Arrange: relay A's claim lapses; relay B claims the event and is publishing it.
      const [tokenA, tokenB] = ['f5a0b7c2-0000-4000-8000-00000000000a', 'f5a0b7c2-0000-4000-8000-00000000000b'];
      const event = await adapter.inTransaction('fenced', (tx) => outbox.add(orderPlaced('fenced'), tx));
      expect(await adapter.store.claim([event.id], 'fast', 1, tokenA)).toEqual([event.id]);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await adapter.store.claim([event.id], 'fast', 60_000, tokenB)).toEqual([event.id]);

      // Act: relay A, late, gives the claim back and records its own send.
      await adapter.store.release([event.id], tokenA);
      const byA = await adapter.store.markPublishedMany([{ eventId: event.id, topic: 'orders.v1', partition: 0, offset: '1', publishedAt: new Date(), attempts: 1, alreadyPublished: false }], tokenA);
      const workflowClaim = await adapter.store.claim([event.id], 'workflow');
      const byB = await adapter.store.markPublishedMany([{ eventId: event.id, topic: 'orders.v1', partition: 0, offset: '2', publishedAt: new Date(), attempts: 1, alreadyPublished: false }], tokenB);

      // Assert: B's claim held (no workflow got in), A recorded nothing, B recorded its own write.
      expect(byA).toEqual({ marked: 0, positionTaken: [] });
      expect(workflowClaim).toEqual([]);
      expect(byB).toEqual({ marked: 1, positionTaken: [] });
      expect(await adapter.store.get(event.id)).toMatchObject({ status: 'published', kafka: { partition: 0, offset: '2' } });
    });

    test("fast-path leases run on the database server's clock: a process whose clock runs ten minutes fast cannot take over a live lease", async () => {
      // Arrange
      const added = await adapter.inTransaction('lease-1', (tx) => outbox.add(orderPlaced('lease-1'), tx));
      expect(await adapter.store.claim([added.id], 'fast', 60_000)).toEqual([added.id]);

      // Act: this process's clock (Date only; timers run as they do) jumps ten minutes ahead.
      jest.useFakeTimers({ now: Date.now() + 600_000, advanceTimers: true, doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'queueMicrotask', 'hrtime', 'performance'] });
      let takeover: string[];
      let byWorkflow: string[];
      try {
        takeover = await adapter.store.claim([added.id], 'fast', 60_000);
        byWorkflow = await adapter.store.claim([added.id], 'workflow');
      } finally {
        jest.useRealTimers();
      }

      // Assert
      expect(takeover).toEqual([]);
      expect(byWorkflow).toEqual([]);
    });

    test("a key's open events are read ahead in sequence order: pending and stuck ones after a sequence, at most a limit, not another key's", async () => {
      // Arrange: lines 1-5 of order o-1 (2 published, 3 stuck) and a line of o-2.
      const line = (orderId: string, n: number) => adapter.inTransaction(`${orderId}-line-${n}`, (tx) => outbox.add({ type: 'orders.LineAdded', aggregateId: orderId, payload: { orderId, line: n } }, tx));
      const lines: OutboxEvent[] = [];
      for (let n = 1; n <= 5; n++) lines.push(await line('o-1', n));
      await line('o-2', 1);
      const [, second, third] = lines as [OutboxEvent, OutboxEvent, OutboxEvent];
      await adapter.store.markPublished({ eventId: second.id, topic: 'orders.v1', partition: 0, offset: '7', publishedAt: new Date(), attempts: 1, alreadyPublished: false });
      await adapter.store.transition(third.id, { from: 'pending', to: 'stuck', attempts: 3, lastError: 'broker down' });

      // Act
      const afterFirst = await adapter.store.openEventsOfKey('orders.v1', 'o-1', 1, 10);
      const limited = await adapter.store.openEventsOfKey('orders.v1', 'o-1', 0, 2);
      const none = await adapter.store.openEventsOfKey('orders.v1', 'o-1', 5, 10);

      // Assert
      expect(afterFirst.map((e) => [e.sequence, e.status])).toEqual([[3, 'stuck'], [4, 'pending'], [5, 'pending']]);
      expect(limited.map((e) => e.id)).toEqual([lines[0]?.id, third.id]);
      expect(none).toEqual([]);
    });

    test('escalation transitions are conditional: pending → stuck → pending, stuck → discarded, and nothing else', async () => {
      // Arrange
      const added = await adapter.inTransaction('o-1', (tx) => outbox.add(orderPlaced('o-1'), tx));
      const at = new Date('2026-02-03T04:05:06.000Z');

      // Act
      await adapter.store.recordFailure(added.id, { attempts: 3, lastError: 'broker down' });
      const results = [
        await adapter.store.transition(added.id, { from: 'stuck', to: 'pending' }), // not stuck yet
        await adapter.store.transition(added.id, { from: 'pending', to: 'stuck', attempts: 3, lastError: 'retries exhausted' }),
        await adapter.store.transition(added.id, { from: 'pending', to: 'stuck', attempts: 3, lastError: 'twice' }), // already stuck
        await adapter.store.transition(added.id, { from: 'stuck', to: 'pending' }),
        await adapter.store.transition(added.id, { from: 'pending', to: 'stuck', attempts: 5, lastError: 'again' }),
        await adapter.store.transition(added.id, { from: 'stuck', to: 'discarded', resolution: { status: 'discarded', reason: 'test order', at } }),
        await adapter.store.transition(added.id, { from: 'stuck', to: 'pending' }), // discarded is final
      ];

      // Assert
      expect(results).toEqual([false, true, false, true, true, true, false]);
      expect(await adapter.store.get(added.id)).toMatchObject({
        status: 'discarded',
        attempts: 5,
        lastError: 'again',
        resolution: { status: 'discarded', reason: 'test order', at },
      });
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

  describe('the relay: pending events, the change feed, partitions and leases (OutboxRelayStore)', () => {
    test('findPending returns pending events created before a time, oldest first, page by page', async () => {
      // Arrange
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await adapter.inTransaction(`o-${i}`, (tx) => outbox.add(orderPlaced(`o-${i}`), tx))).id);
      await adapter.store.markPublished({ eventId: ids[1] ?? '', topic: 'orders.v1', partition: 0, offset: '0', publishedAt: new Date(), attempts: 1, alreadyPublished: false });
      const beforeId = minEventIdAt(Date.now() + 1_000);

      // Act
      const page1 = await adapter.store.findPending({ beforeId, limit: 2 });
      const page2 = await adapter.store.findPending({ beforeId, afterId: page1[page1.length - 1]?.id, limit: 2 });
      const none = await adapter.store.findPending({ beforeId: minEventIdAt(Date.now() - 3_600_000), limit: 10 });

      // Assert
      expect([...page1, ...page2].map((e: OutboxEvent) => e.id)).toEqual([ids[0], ids[2], ids[3], ids[4]]);
      expect(none).toEqual([]);
    });

    test('findPending leaves an event under a live fast claim to its claimant, and finds it again once the claim lapses or a workflow owns it', async () => {
      // Arrange: a live fast claim, a lapsed one, a workflow's claim, and an event nobody claimed.
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await adapter.inTransaction(`c-${i}`, (tx) => outbox.add(orderPlaced(`c-${i}`), tx))).id);
      const token = 'f5a0b7c2-0000-4000-8000-000000000003';
      expect(await adapter.store.claim([ids[0] ?? ''], 'fast', 60_000, token)).toEqual([ids[0]]);
      expect(await adapter.store.claim([ids[1] ?? ''], 'fast', 1, token)).toEqual([ids[1]]);
      expect(await adapter.store.claim([ids[2] ?? ''], 'workflow')).toEqual([ids[2]]);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const beforeId = minEventIdAt(Date.now() + 1_000);

      // Act
      const found = await adapter.store.findPending({ beforeId, limit: 10 });
      await adapter.store.release([ids[0] ?? ''], token);
      const afterRelease = await adapter.store.findPending({ beforeId, limit: 10 });

      // Assert
      expect(found.map((e) => e.id)).toEqual([ids[1], ids[2], ids[3]]);
      expect(afterRelease.map((e) => e.id)).toEqual(ids);
    });

    test('the change feed yields committed events in order and resumes after its checkpoint', async () => {
      // Arrange
      const name = uniqueName('feed');
      const abort1 = new AbortController();
      const gaps: FeedGap[] = [];
      const feed1 = adapter.store.openFeed({ name, batchSize: 10, maxWaitMs: 200 });
      feed1.onGap((g) => gaps.push(g));
      const batches1 = feed1.batches(abort1.signal)[Symbol.asyncIterator]();
      await batches1.next(); // positioned ("now": no checkpoint yet)
      const a = await adapter.inTransaction('a', (tx) => outbox.add(orderPlaced('a'), tx));
      const b = await adapter.inTransaction('b', (tx) => outbox.add(orderPlaced('b'), tx));

      // Act
      const seen: string[] = [];
      while (seen.length < 2) {
        const batch = await firstBatchWithEvents(batches1);
        seen.push(...batch.events.map((e) => e.id));
        await batch.checkpoint();
      }
      abort1.abort();
      await batches1.return?.();
      const c = await adapter.inTransaction('c', (tx) => outbox.add(orderPlaced('c'), tx));
      const abort2 = new AbortController();
      const feed2 = adapter.store.openFeed({ name, batchSize: 10, maxWaitMs: 200 });
      feed2.onGap((g) => gaps.push(g));
      const batches2 = feed2.batches(abort2.signal)[Symbol.asyncIterator]();
      const resumed = await firstBatchWithEvents(batches2);
      abort2.abort();
      await batches2.return?.();

      // Assert
      expect(seen).toEqual([a.id, b.id]);
      expect(resumed.events.map((e) => e.id)).toEqual([c.id]);
      expect(resumed.events[0]).toEqual(c);
      expect(gaps).toEqual(['no-checkpoint']);
    });

    test("the change feed resumes after the last batch whose position was saved, the earlier batches' too: saving an empty batch after two unsaved ones skips all three", async () => {
      // Arrange: two batches with events and an empty one after them, only the empty one saved.
      const name = uniqueName('feed');
      const abort1 = new AbortController();
      const batches1 = adapter.store.openFeed({ name, batchSize: 10, maxWaitMs: 200 }).batches(abort1.signal)[Symbol.asyncIterator]();
      await batches1.next(); // positioned ("now": nothing saved yet)
      const a = await adapter.inTransaction('a', (tx) => outbox.add(orderPlaced('a'), tx));
      const first = await firstBatchWithEvents(batches1);
      const b = await adapter.inTransaction('b', (tx) => outbox.add(orderPlaced('b'), tx));
      const second = await firstBatchWithEvents(batches1);
      let empty = await batches1.next();
      while (empty.done !== true && empty.value.events.length > 0) empty = await batches1.next();
      if (empty.done === true) throw new Error('feed ended');
      await empty.value.checkpoint();
      abort1.abort();
      await batches1.return?.();
      const c = await adapter.inTransaction('c', (tx) => outbox.add(orderPlaced('c'), tx));

      // Act
      const abort2 = new AbortController();
      const batches2 = adapter.store.openFeed({ name, batchSize: 10, maxWaitMs: 200 }).batches(abort2.signal)[Symbol.asyncIterator]();
      const resumed = await firstBatchWithEvents(batches2);
      abort2.abort();
      await batches2.return?.();

      // Assert
      expect([...first.events, ...second.events].map((e) => e.id)).toEqual([a.id, b.id]);
      expect(resumed.events.map((e) => e.id)).toEqual([c.id]);
    });

    test('the change feed, with nothing new to read, yields at most one empty batch per maxWaitMs, however often other changes touch the outbox', async () => {
      // Arrange: a feed past one event, and that event claimed and released over and over (updates, not inserts).
      const maxWaitMs = 500;
      const abort = new AbortController();
      const batches = adapter.store.openFeed({ name: uniqueName('feed'), batchSize: 10, maxWaitMs }).batches(abort.signal)[Symbol.asyncIterator]();
      await batches.next(); // positioned ("now")
      const event = await adapter.inTransaction('idle', (tx) => outbox.add(orderPlaced('idle'), tx));
      await firstBatchWithEvents(batches);
      const token = 'f5a0b7c2-0000-4000-8000-000000000009';
      const windowMs = 2_500;
      const started = Date.now();
      let changes = 0;
      const churn = (async () => {
        while (Date.now() - started < windowMs) {
          await adapter.store.claim([event.id], 'fast', 60_000, token);
          await adapter.store.release([event.id], token);
          changes += 2;
        }
      })();

      // Act
      const yielded: number[] = [];
      while (Date.now() - started < windowMs) {
        const next = await batches.next();
        if (next.done === true) break;
        yielded.push(next.value.events.length);
      }
      await churn;
      const elapsed = Date.now() - started;
      abort.abort();
      await batches.return?.();

      // Assert: empty batches only, no more than one per maxWaitMs of the window (and the one under way).
      expect(changes).toBeGreaterThan(20);
      expect(yielded.every((n) => n === 0)).toBe(true);
      expect(yielded.length).toBeLessThanOrEqual(Math.ceil(elapsed / maxWaitMs) + 1);
    });

    test('the change feed does not wait out its poll for an event whose transaction was open when it began to wait, nor for one written while it waits', async () => {
      // Arrange: a feed polling once in ten minutes, and a transaction holding an event, not committed yet.
      const abort = new AbortController();
      const batches = adapter.store.openFeed({ name: uniqueName('feed'), batchSize: 10, maxWaitMs: 600_000 }).batches(abort.signal)[Symbol.asyncIterator]();
      let commit: () => void = () => undefined;
      const committed = new Promise<void>((resolve) => (commit = resolve));
      let open: (() => void) | undefined;
      const opened = new Promise<void>((resolve) => (open = resolve));
      const inFlight = adapter.inTransaction('in-flight', async (tx) => {
        const event = await outbox.add(orderPlaced('in-flight'), tx);
        open?.();
        await committed;
        return event;
      });
      await opened;

      // Act: the feed starts from now and begins to wait (given time to), then the transaction
      // commits; then one more event.
      const first = firstBatchWithEvents(batches);
      await new Promise((resolve) => setTimeout(resolve, 500));
      commit();
      const a = await inFlight;
      const readFirst = await first;
      const second = firstBatchWithEvents(batches);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const b = await adapter.inTransaction('while-waiting', (tx) => outbox.add(orderPlaced('while-waiting'), tx));
      const readSecond = await second;
      abort.abort();
      await batches.return?.();

      // Assert: both read, each long before the poll.
      expect(readFirst.events.map((e) => e.id)).toEqual([a.id]);
      expect(readSecond.events.map((e) => e.id)).toEqual([b.id]);
    });

    test('bad input: a corrupted checkpoint is dropped with a gap (the sweeper covers it) and the feed goes on from now', async () => {
      // Arrange: a feed that saved a position, then the position damaged.
      const name = uniqueName('feed');
      const first = adapter.store.openFeed({ name, batchSize: 10, maxWaitMs: 200 });
      const abort1 = new AbortController();
      const batches1 = first.batches(abort1.signal)[Symbol.asyncIterator]();
      await batches1.next();
      await adapter.inTransaction('a', (tx) => outbox.add(orderPlaced('a'), tx));
      await (await firstBatchWithEvents(batches1)).checkpoint();
      abort1.abort();
      await batches1.return?.();
      await adapter.corruptCheckpoint(name);

      // Act
      const gaps: FeedGap[] = [];
      const abort2 = new AbortController();
      const second = adapter.store.openFeed({ name, batchSize: 10, maxWaitMs: 200 });
      second.onGap((g) => gaps.push(g));
      const batches2 = second.batches(abort2.signal)[Symbol.asyncIterator]();
      await batches2.next(); // positioned
      const b = await adapter.inTransaction('b', (tx) => outbox.add(orderPlaced('b'), tx));
      const next = await firstBatchWithEvents(batches2);
      await next.checkpoint();
      abort2.abort();
      await batches2.return?.();

      // Assert
      expect(gaps).toEqual(['checkpoint-unusable']);
      expect(next.events.map((e) => e.id)).toEqual([b.id]);
    });

    test('partitions: every event is in the partition of its key, and the count is fixed at set-up (another count is refused with INVALID_CONFIG)', async () => {
      // Arrange
      const count = await adapter.store.partitionCount();
      const keys = ['k-a', 'k-b', 'k-c', 'k-d', 'k-e', 'k-f'];
      const events: OutboxEvent[] = [];
      for (const key of keys) events.push(await adapter.inTransaction(key, (tx) => outbox.add(orderPlaced(key), tx)));
      const beforeId = minEventIdAt(Date.now() + 1_000);

      // Act
      const byPartition = await Promise.all(keys.map((key) => adapter.store.findPending({ beforeId, limit: 100, partitions: [partitionOf(key, count)] })));
      const elsewhere = await Promise.all(keys.map((key) => adapter.store.findPending({ beforeId, limit: 100, partitions: Array.from({ length: count }, (_, p) => p).filter((p) => p !== partitionOf(key, count)) })));
      const again = await adapter.storeWithPartitions(count).setup();

      // Assert
      expect(count).toBe(DEFAULT_PARTITION_COUNT);
      keys.forEach((key, i) => {
        expect(byPartition[i]?.map((e) => e.id)).toContain(events[i]?.id);
        expect(elsewhere[i]?.map((e) => e.id)).not.toContain(events[i]?.id);
      });
      expect(again).toEqual([]);
      await expect(adapter.storeWithPartitions(count + 1).setup()).rejects.toMatchObject({ code: OutboxErrorCode.invalidConfig });
    });

    test('partition leases: a member takes what is free, renews its own, cannot take a live lease of another, takes it once lapsed; leaving frees the rest', async () => {
      // Arrange
      const group = uniqueName('group');
      const store = adapter.store;

      // Act
      const membersA = await store.heartbeat(group, 'relay-a', 60_000);
      const takenA = await store.acquire(group, 'relay-a', [0, 1, 2, 3], 60_000);
      const membersB = await store.heartbeat(group, 'relay-b', 60_000);
      const refusedB = await store.acquire(group, 'relay-b', [2, 3], 60_000);
      const renewedA = await store.acquire(group, 'relay-a', [0, 1, 2, 3], 300);
      await new Promise((resolve) => setTimeout(resolve, 600));
      const lapsedTakenB = await store.acquire(group, 'relay-b', [2, 3], 60_000);
      const renewA = await store.acquire(group, 'relay-a', [0, 1, 2, 3], 60_000);
      await store.releaseLeases(group, 'relay-b', [2, 3], true);
      const status = await store.partitionStatus(group);
      const membersAfter = await store.heartbeat(group, 'relay-a', 60_000);

      // Assert
      expect(membersA).toEqual(['relay-a']);
      expect(takenA).toEqual([0, 1, 2, 3]);
      expect(membersB).toEqual(['relay-a', 'relay-b']);
      expect(refusedB).toEqual([]);
      expect(renewedA).toEqual([0, 1, 2, 3]);
      expect(lapsedTakenB).toEqual([2, 3]);
      // relay-a's lapsed leases on 0 and 1 were nobody's: renewed; 2 and 3 are relay-b's now.
      expect(renewA).toEqual([0, 1]);
      expect(status.slice(0, 4).map((p) => [p.partition, p.owner])).toEqual([[0, 'relay-a'], [1, 'relay-a'], [2, null], [3, null]]);
      expect(status).toHaveLength(await store.partitionCount());
      expect(membersAfter).toEqual(['relay-a']);
    });

    test('partition status counts each partition\'s pending events and names its oldest, as the sweeper finds them', async () => {
      // Arrange: pending events in several partitions, one of them published.
      const count = await adapter.store.partitionCount();
      const written: OutboxEvent[] = [];
      for (const [i, key] of ['s-a', 's-b', 's-c', 's-d', 's-a'].entries()) written.push(await adapter.inTransaction(`s-${i}`, (tx) => outbox.add(orderPlaced(key), tx)));
      await adapter.store.markPublished({ eventId: written[1]?.id ?? '', topic: 'orders.v1', partition: 0, offset: '0', publishedAt: new Date(), attempts: 1, alreadyPublished: false });
      const beforeId = minEventIdAt(Date.now() + 1_000);

      // Act
      const status = await adapter.store.partitionStatus(uniqueName('status'));
      const found = await Promise.all(status.map((s) => adapter.store.findPending({ beforeId, limit: 100_000, partitions: [s.partition] })));

      // Assert: per partition, the count and the oldest the sweeper's query finds.
      expect(status.map((s) => s.partition)).toEqual(Array.from({ length: count }, (_, p) => p));
      expect(status.map((s) => [s.pending, s.oldestPending?.id ?? null])).toEqual(found.map((f) => [f.length, f[0]?.id ?? null]));
      const mine = status[partitionOf('s-a', count)];
      expect(mine?.pending).toBeGreaterThanOrEqual(2);
      expect(mine?.oldestPending?.occurredAt).toBeInstanceOf(Date);
    });

    test('a partitioned feed reads only its partitions, saves their positions only while it holds their leases (LEASE_LOST otherwise), and the next owner resumes there', async () => {
      // Arrange: two keys in different partitions; relay-a holds the first key's partition.
      const group = uniqueName('feed');
      const count = await adapter.store.partitionCount();
      const [mine, other] = twoKeysInDifferentPartitions(count);
      const p = partitionOf(mine, count);
      await adapter.store.heartbeat(group, 'relay-a', 60_000);
      expect(await adapter.store.acquire(group, 'relay-a', [p], 60_000)).toEqual([p]);
      const abort1 = new AbortController();
      const batches1 = adapter.store.openFeed({ name: group, batchSize: 10, maxWaitMs: 200, partitions: { ids: [p], member: 'relay-a' } }).batches(abort1.signal)[Symbol.asyncIterator]();
      await batches1.next(); // positioned
      const first = await adapter.inTransaction('b1', (tx) => outbox.add(orderPlaced(mine), tx));
      await adapter.inTransaction('b2', (tx) => outbox.add(orderPlaced(other), tx));

      // Act
      const read = await firstBatchWithEvents(batches1);
      await read.checkpoint();
      const second = await adapter.inTransaction('b3', (tx) => outbox.add(orderPlaced(mine), tx));
      const readLate = await firstBatchWithEvents(batches1);
      await adapter.store.releaseLeases(group, 'relay-a', [p]);
      const refused = await readLate.checkpoint().then(() => null, (err: unknown) => err);
      abort1.abort();
      await batches1.return?.();
      await adapter.store.acquire(group, 'relay-b', [p], 60_000);
      const abort2 = new AbortController();
      const batches2 = adapter.store.openFeed({ name: group, batchSize: 10, maxWaitMs: 200, partitions: { ids: [p], member: 'relay-b' } }).batches(abort2.signal)[Symbol.asyncIterator]();
      const resumed = await firstBatchWithEvents(batches2);
      abort2.abort();
      await batches2.return?.();

      // Assert
      expect(read.events.map((e) => e.id)).toEqual([first.id]);
      expect(readLate.events.map((e) => e.id)).toEqual([second.id]);
      expect(refused).toMatchObject({ code: OutboxErrorCode.leaseLost });
      // relay-a's last position was refused: relay-b reads that event again, and nothing of the other key.
      expect(resumed.events.map((e) => e.id)).toEqual([second.id]);
    });

    test('a feed taking partitions whose positions differ starts from the oldest position, not the one saved longest ago: no event of either is skipped, and no gap is reported', async () => {
      // Arrange: relay-b reads partition B's first event and saves that position only after relay-a read
      // and saved a later event of partition A: B's position is older, but saved later.
      const group = uniqueName('feed');
      const count = await adapter.store.partitionCount();
      const [keyA, keyB] = twoKeysInDifferentPartitions(count);
      const [pA, pB] = [partitionOf(keyA, count), partitionOf(keyB, count)];
      const open = async (member: string, ids: number[], { skipFirst = true } = {}) => {
        await adapter.store.heartbeat(group, member, 60_000);
        expect(await adapter.store.acquire(group, member, ids, 60_000)).toEqual([...ids].sort((x, y) => x - y));
        const abort = new AbortController();
        const gaps: FeedGap[] = [];
        const feed = adapter.store.openFeed({ name: group, batchSize: 10, maxWaitMs: 200, partitions: { ids, member } });
        feed.onGap((g) => gaps.push(g));
        const batches = feed.batches(abort.signal)[Symbol.asyncIterator]();
        if (skipFirst) await batches.next(); // positioned, at "now"
        return { batches, gaps, close: async () => { abort.abort(); await batches.return?.(); } };
      };
      const a = await open('relay-a', [pA]);
      const b = await open('relay-b', [pB]);
      const b1 = await adapter.inTransaction('b1', (tx) => outbox.add(orderPlaced(keyB), tx));
      const readByB = await firstBatchWithEvents(b.batches);
      const b2 = await adapter.inTransaction('b2', (tx) => outbox.add(orderPlaced(keyB), tx));
      const a1 = await adapter.inTransaction('a1', (tx) => outbox.add(orderPlaced(keyA), tx));
      const readByA = await firstBatchWithEvents(a.batches);
      await readByA.checkpoint();
      await new Promise((resolve) => setTimeout(resolve, 20));
      await readByB.checkpoint();
      await a.close();
      await b.close();
      await adapter.store.releaseLeases(group, 'relay-a', [pA], true);
      await adapter.store.releaseLeases(group, 'relay-b', [pB], true);

      // Act: relay-c takes both partitions.
      const c = await open('relay-c', [pA, pB], { skipFirst: false });
      const seen: string[] = [];
      for (const until = Date.now() + 5_000; !seen.includes(b2.id) && Date.now() < until; ) {
        const next = await c.batches.next();
        if (next.done === true) break;
        seen.push(...next.value.events.map((e) => e.id));
      }
      await c.close();

      // Assert: B's second event is read (A's event may come again: a duplicate start), and no gap.
      expect(readByB.events.map((e) => e.id)).toEqual([b1.id]);
      expect(readByA.events.map((e) => e.id)).toEqual([a1.id]);
      expect(seen).toContain(b2.id);
      expect(c.gaps).toEqual([]);
    });
  });
}

/** Two keys whose partitions differ. */
function twoKeysInDifferentPartitions(count: number): [string, string] {
  const first = 'key-0';
  for (let i = 1; ; i++) {
    if (partitionOf(`key-${i}`, count) !== partitionOf(first, count)) return [first, `key-${i}`];
  }
}

for (const factory of [mongoAdapter, postgresAdapter]) {
  describe(`store contract: ${factory.name} adapter`, () => contract(factory));
}
