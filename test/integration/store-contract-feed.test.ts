/**
 * The store contract, the relay's reading, on both store adapters: pending events and the change feed.
 */
import { minEventIdAt, type FeedGap, type OutboxEvent } from '../../domain/outbox';
import { adapter, outbox, orderPlaced, firstBatchWithEvents, storeContract } from '../support/store-contract';
import { uniqueName } from '../support/servers';

storeContract(() => {
  describe('the relay: pending events and the change feed (OutboxRelayStore)', () => {
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
  });
});
