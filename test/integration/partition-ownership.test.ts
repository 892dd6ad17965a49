/**
 * A relay's partition leases (workers/relay/partitions.ts) on each real store: renewed on their own
 * schedule whatever the relay's feed is doing, and handed over only once the feed stopped reading.
 */
import { PartitionOwnership } from '../../workers/relay/partitions';
import { mongoAdapter, postgresAdapter, type AdapterUnderTest } from '../support/store-adapters';
import { uniqueName, waitFor } from '../support/servers';

const LEASE_MS = 1_500;

for (const factory of [mongoAdapter, postgresAdapter]) {
  describe(`partition ownership (${factory.name} store)`, () => {
    let adapter: AdapterUnderTest<unknown>;

    beforeEach(async () => {
      adapter = await factory.create();
    });

    afterEach(async () => {
      await adapter.teardown();
    });

    test('a rebalance does not wait for the batch in flight: the leases are renewed while the feed finishes it, and the partitions it gives up are released only after', async () => {
      // Arrange: relay-a holds every partition; its feed takes three leases long to stop (a slow dispatch).
      const group = uniqueName('group');
      const count = await adapter.store.partitionCount();
      let finishDispatch: () => void = () => undefined;
      const dispatching = new Promise<void>((resolve) => (finishDispatch = resolve));
      const changes: Array<readonly number[]> = [];
      let stopped: number | undefined;
      const a = new PartitionOwnership({
        store: adapter.store,
        group,
        member: 'relay-a',
        leaseMs: LEASE_MS,
        onChange: async (owned) => {
          changes.push(owned);
          if (changes.length > 1) {
            await dispatching; // the feed reading the old partitions ends after its batch
            stopped = Date.now();
          }
        },
      });
      await a.start();
      expect(a.partitions()).toHaveLength(count);
      const renewals: number[] = [];
      a.on('renewed', () => renewals.push(Date.now()));

      // Act: relay-b joins; relay-a's share halves while its feed is still dispatching.
      await adapter.store.heartbeat(group, 'relay-b', 60_000);
      await waitFor(() => changes.length > 1, { what: 'relay-a to start giving partitions up' });
      const invalidWhileDispatching: number[] = [];
      const until = Date.now() + 3 * LEASE_MS;
      while (Date.now() < until) {
        if (!a.valid()) invalidWhileDispatching.push(Date.now());
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const givenUp = count - (changes[1]?.length ?? count);
      const heldDuringDispatch = (await adapter.store.partitionStatus(group)).filter((s) => s.owner === 'relay-a' && (s.expiresAt?.getTime() ?? 0) > Date.now()).length;
      const renewedDuringDispatch = renewals.filter((t) => t < until).length;
      finishDispatch();
      await waitFor(async () => (await adapter.store.partitionStatus(group)).filter((s) => s.owner === 'relay-a').length === count - givenUp, {
        what: 'the partitions given up released once the feed stopped',
      });
      await a.stop();

      // Assert
      expect(givenUp).toBeGreaterThan(0);
      expect(invalidWhileDispatching).toEqual([]);
      expect(renewedDuringDispatch).toBeGreaterThanOrEqual(3);
      expect(heldDuringDispatch).toBe(count); // the ones being handed over stay held until the feed stopped
      expect(stopped).toBeDefined();
    }, 60_000);
  });
}
