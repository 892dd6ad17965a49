/**
 * The store contract, one event at a time, on both store adapters: marks, claims and escalation (the
 * worker's activities, and the fast path's claims).
 */
import { OutboxErrorCode, type OutboxEvent } from '../../domain/outbox';
import { adapter, outbox, orderPlaced, storeContract } from '../support/store-contract';

storeContract(() => {
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
});
