import { z } from 'zod';
import { createEventRegistry, defineEventType, type EventRegistry } from '../outbox';

/** The topic the demo's order events are published to. */
export const ORDERS_TOPIC = 'orders.v1';

const line = z.object({ sku: z.string().min(1), quantity: z.number().int().positive(), unitPriceCents: z.number().int().nonnegative() });

const placedV1 = z.object({
  orderId: z.string().min(1),
  customerId: z.string().min(1),
  lines: z.array(line).min(1),
  totalCents: z.number().int().nonnegative(),
  placedAt: z.iso.datetime(),
});

export const OrderPlacedV1 = defineEventType({
  type: 'orders.OrderPlaced',
  schemaVersion: 1,
  aggregateType: 'order',
  topic: ORDERS_TOPIC,
  schema: placedV1,
});

/**
 * v2 adds the currency of the total (EUR when a service does not say). FULL: a v1 consumer reads v2
 * (it ignores the field), a v2 consumer reads v1 (the field is optional to its parser).
 */
export const OrderPlacedV2 = defineEventType({
  type: 'orders.OrderPlaced',
  schemaVersion: 2,
  aggregateType: 'order',
  topic: ORDERS_TOPIC,
  compatibility: 'FULL',
  schema: placedV1.extend({ currency: z.string().length(3).default('EUR') }),
  upcast: { from: OrderPlacedV1, transform: (v1) => ({ ...v1, currency: 'EUR' }) },
});

export const OrderCancelledV1 = defineEventType({
  type: 'orders.OrderCancelled',
  schemaVersion: 1,
  aggregateType: 'order',
  topic: ORDERS_TOPIC,
  schema: z.object({ orderId: z.string().min(1), reason: z.string().min(1), cancelledAt: z.iso.datetime() }),
});

/** The demo's contracts: OrderPlaced v1 and v2 (add() writes v2), OrderCancelled v1; each published as written. */
export function orderEventRegistry(): EventRegistry {
  return createEventRegistry([OrderPlacedV1, OrderPlacedV2, OrderCancelledV1]);
}

/** The contracts of a service instance not yet redeployed with v2: its add() writes OrderPlaced v1. */
export function orderEventRegistryV1(): EventRegistry {
  return createEventRegistry([OrderPlacedV1, OrderCancelledV1]);
}
