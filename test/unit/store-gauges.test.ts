/**
 * The outbox's gauges read from the store (events by status, the oldest pending event's age) cost
 * the store one read per scrape, and each scrape reads it afresh.
 */
import type { OutboxStats } from '../../domain/outbox';
import { OutboxMetrics } from '../../workers/process/metrics';

describe('store gauges', () => {
  test('one scrape reads the store once for every store gauge, and the next scrape reads it again', async () => {
    // Arrange
    let reads = 0;
    const stats = (pending: number): OutboxStats => ({ counts: { pending, published: 2, stuck: 0, compensated: 0, discarded: 0 }, oldestPending: pending === 0 ? null : { id: 'e-1', occurredAt: new Date(Date.now() - 60_000) } });
    const metrics = new OutboxMetrics();
    metrics.observeStore({ stats: async () => stats(++reads === 1 ? 3 : 0) });

    // Act
    const first = await metrics.registry.metrics();
    const readsAfterFirst = reads;
    const second = await metrics.registry.metrics();

    // Assert
    expect(readsAfterFirst).toBe(1);
    expect(first).toMatch(/^txoutbox_events\{status="pending"\} 3$/m);
    expect(Number(/^txoutbox_oldest_unpublished_event_age_seconds ([0-9.]+)$/m.exec(first)?.[1])).toBeGreaterThanOrEqual(60);
    expect(reads).toBe(2);
    expect(second).toMatch(/^txoutbox_events\{status="pending"\} 0$/m);
    expect(second).toMatch(/^txoutbox_oldest_unpublished_event_age_seconds 0$/m);
  });
});
