import type { OutboxEvent } from '../../domain/outbox';

/** A complete pending envelope for unit tests; override what the test is about. */
export function sampleEvent(overrides: Partial<OutboxEvent> = {}): OutboxEvent {
  return {
    id: 'e-1',
    envelopeVersion: 1,
    specVersion: '1.0',
    source: 's',
    type: 'orders.OrderPlaced',
    schemaVersion: 1,
    aggregateType: 'order',
    aggregateId: 'o-1',
    topic: 'orders',
    key: 'o-1',
    payload: { b: 2, a: 1 },
    payloadHash: 'h',
    headers: {},
    occurredAt: new Date('2026-01-01T00:00:00Z'),
    status: 'pending',
    attempts: 0,
    lastError: null,
    publishedAt: null,
    kafka: null,
    resolution: null,
    sequence: null,
    ...overrides,
  };
}
