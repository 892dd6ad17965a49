/**
 * The store contract, the relay's partitions, on both store adapters: every event in its key's
 * partition, partition leases, and partitioned feeds.
 */
import { DEFAULT_PARTITION_COUNT, minEventIdAt, partitionOf, OutboxErrorCode, type FeedGap, type OutboxEvent } from '../../domain/outbox';
import { adapter, outbox, orderPlaced, firstBatchWithEvents, storeContract } from '../support/store-contract';
import { uniqueName } from '../support/servers';

storeContract(() => {
  describe('the relay: partitions and leases (OutboxRelayStore)', () => {
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
});

/** Two keys whose partitions differ. */
function twoKeysInDifferentPartitions(count: number): [string, string] {
  const first = 'key-0';
  for (let i = 1; ; i++) {
    if (partitionOf(`key-${i}`, count) !== partitionOf(first, count)) return [first, `key-${i}`];
  }
}
