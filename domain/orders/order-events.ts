import { z } from 'zod';
import { createEventRegistry, defineEventType, type EventRegistry } from '../outbox';

/** The topic the demo's order events are published to. */
export const ORDERS_TOPIC = 'orders.v1';

const line = z.object({ sku: z.string().min(1), quantity: z.number().int().positive(), unitPriceCents: z.number().int().nonnegative() });

export const OrderPlacedV1 = defineEventType({
  type: 'orders.OrderPlaced',
  schemaVersion: 1,
  aggregateType: 'order',
  topic: ORDERS_TOPIC,
  schema: z.object({
    orderId: z.string().min(1),
    customerId: z.string().min(1),
    lines: z.array(line).min(1),
    totalCents: z.number().int().nonnegative(),
    placedAt: z.iso.datetime(),
  }),
});

export const OrderCancelledV1 = defineEventType({
  type: 'orders.OrderCancelled',
  schemaVersion: 1,
  aggregateType: 'order',
  topic: ORDERS_TOPIC,
  schema: z.object({ orderId: z.string().min(1), reason: z.string().min(1), cancelledAt: z.iso.datetime() }),
});

export function orderEventRegistry(): EventRegistry {
  return createEventRegistry([OrderPlacedV1, OrderCancelledV1]);
}
