/**
 * The store contract's common ground (test/integration/store-contract-*.test.ts): one contract, both
 * store adapters, MongoDB (the server the scripts start, or the replica set MONGODB_URI names) and
 * PostgreSQL, each test on a fresh adapter and outbox.
 */
import { z } from 'zod';
import { createEventRegistry, createOutbox, defineEventType, type FeedBatch, type NewEvent, type Outbox } from '../../domain/outbox';
import { mongoAdapter, postgresAdapter, type AdapterUnderTest } from './store-adapters';

export const registry = createEventRegistry([
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

export function orderPlaced(orderId: string, extra: Partial<NewEvent> = {}): NewEvent {
  return { type: 'orders.OrderPlaced', aggregateId: orderId, payload: { orderId, totalCents: 100 }, ...extra };
}

export async function firstBatchWithEvents(batches: AsyncIterator<FeedBatch>): Promise<FeedBatch> {
  for (;;) {
    const next = await batches.next();
    if (next.done) throw new Error('feed ended');
    if (next.value.events.length > 0) return next.value;
  }
}

/** The adapter and outbox of the running test (live bindings: set before each test by `storeContract`). */
export let adapter: AdapterUnderTest<unknown>;
export let outbox: Outbox<unknown>;

/**
 * Runs a part of the contract (`body`: its describes) on each store adapter: before each test,
 * `adapter` and `outbox` are a fresh adapter and an outbox over it; after it, the adapter is torn
 * down.
 */
export function storeContract(body: () => void): void {
  for (const factory of [mongoAdapter, postgresAdapter]) {
    describe(`store contract: ${factory.name} adapter`, () => {
      beforeEach(async () => {
        adapter = await factory.create();
        outbox = createOutbox({ store: adapter.store, registry, source: 'contract-tests', maxPayloadBytes: 1_000 });
      });
      afterEach(async () => {
        await adapter.teardown();
      });
      body();
    });
  }
}
