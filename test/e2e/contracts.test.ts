/**
 * Event contracts that evolve: an event written as v1 before v2 was deployed is published as v2 when
 * its type is so configured (upcast, validated against v2, the CloudEvents header saying v2), by a
 * workflow and by the fast path; the store keeps it as written. An upcast that fails leaves the event
 * stuck with the reason, never lost: a retry after the fix publishes it.
 */
import { z } from 'zod';
import { createEventRegistry, createOutbox, defineEventType, type EventRegistry, type EventType } from '../../domain/outbox';
import { TestPipeline, orderPlacedSchema } from '../support/pipeline';
import { STORE_KINDS } from '../support/pipeline-store';
import { waitFor } from '../support/servers';

type PlacedV1 = z.infer<typeof orderPlacedSchema>;

describe.each(STORE_KINDS)('event contracts: events written as v1 published as v2 (%s store)', (kind) => {
  let p: TestPipeline;
  /** Whether the upcast refuses customer c-broken (a defect fixed by a deploy). */
  let upcastBroken: boolean;

  beforeEach(async () => {
    p = await new TestPipeline(kind).setup();
    upcastBroken = true;
  });

  afterEach(async () => {
    await p.teardown();
  });

  /** The service after v2 is deployed: OrderPlaced v2 adds a currency, published as v2 from now on. */
  function deployV2(): EventRegistry {
    const v1 = p.registry.resolve('orders.OrderPlaced', 1) as EventType<PlacedV1>;
    const v2 = defineEventType({
      type: v1.type,
      schemaVersion: 2,
      aggregateType: v1.aggregateType,
      topic: v1.topic,
      // A required field added: v1's consumers read v2 (they ignore it), not the reverse.
      compatibility: 'FORWARD',
      schema: orderPlacedSchema.extend({ currency: z.string().length(3) }),
      upcast: {
        from: v1,
        transform: (payload) => {
          if (upcastBroken && payload.customerId === 'c-broken') throw new Error('no currency known for c-broken');
          return { ...payload, currency: 'EUR' };
        },
      },
    });
    return createEventRegistry([...p.registry.all(), v2], { publish: { [v1.type]: 'latest' } });
  }

  const addPlaced = (outbox: typeof p.outbox, orderId: string, customerId: string, extra: Record<string, unknown> = {}) =>
    p.inTransaction(async (tx) => (await outbox.add({ type: 'orders.OrderPlaced', aggregateId: orderId, payload: { orderId, customerId, totalCents: 700, ...extra } }, tx)).id);

  test.each([
    ['a workflow', false],
    ['the fast path', true],
  ] as const)('published by %s: v1 events go out upcast as v2, the store keeps v1, and a failing upcast leaves its event stuck with the reason until a fixed deploy publishes it', async (_path, fast) => {
    // Arrange: v2 is deployed to the worker (and the relay's fast path); a service instance not yet
    // redeployed still writes v1 (p.outbox knows only v1), a redeployed one writes v2.
    const contracts = deployV2();
    await p.startWorker({ contracts });
    const policy = { initialIntervalMs: 100, maximumIntervalMs: 200, maximumAttempts: 3, deadLetterTopic: p.deadLetterTopic };
    await p.startRelay(p.relay({ publishPolicy: policy, ...(fast ? { fastPath: await p.fastPath({ contracts }) } : {}) }));
    const v2Outbox = createOutbox({ store: p.store, registry: contracts, source: 'txoutbox-tests' });

    // Act
    const written = await addPlaced(p.outbox, 'order-1', 'c-1');
    const broken = await addPlaced(p.outbox, 'order-2', 'c-broken');
    const fresh = await addPlaced(v2Outbox, 'order-3', 'c-3', { currency: 'SEK' });
    await p.collector.waitForEventIds([written, fresh], 60_000);
    await waitFor(async () => (await p.store.get(broken))?.status === 'stuck', { what: 'the event whose upcast failed to be stuck', timeoutMs: 60_000 });

    // Assert: Kafka has both as v2; the store has each as it was written.
    const [copy] = p.collector.withEventId(written);
    expect(copy?.cloudEvent.schemaVersion).toBe(2);
    expect(JSON.parse(copy?.value ?? 'null')).toEqual({ orderId: 'order-1', customerId: 'c-1', totalCents: 700, currency: 'EUR' });
    expect(JSON.parse(p.collector.withEventId(fresh)[0]?.value ?? 'null')).toMatchObject({ currency: 'SEK' });
    expect(p.collector.withEventId(fresh)[0]?.cloudEvent.schemaVersion).toBe(2);
    expect(await p.markedPublished(written)).toMatchObject({ schemaVersion: 1, payload: { orderId: 'order-1', customerId: 'c-1', totalCents: 700 } });
    const stuck = await p.store.get(broken);
    expect(stuck).toMatchObject({ status: 'stuck', schemaVersion: 1, lastError: expect.stringContaining('cannot be published as v2: its upcast from v1 to v2 threw: no currency known for c-broken') });
    expect(p.collector.withEventId(broken)).toHaveLength(0);

    // The fix is deployed (the worker's upcast no longer throws); an operator retries; it goes out as v2.
    upcastBroken = false;
    const retried = await p.cli(['retry', broken]);
    expect(retried.code).toBe(0);
    await p.collector.waitForEventIds([broken], 60_000);
    expect(JSON.parse(p.collector.withEventId(broken)[0]?.value ?? 'null')).toMatchObject({ customerId: 'c-broken', currency: 'EUR' });
    expect(await p.markedPublished(broken)).toMatchObject({ schemaVersion: 1 });
  }, 180_000);
});
