/**
 * The main job (README's first command): the orders demo service writes real events through the
 * whole pipeline — MongoDB transaction (or PostgreSQL, with TXOUTBOX_STORE=postgres) → relay → one
 * Temporal workflow per event → Kafka — and an independent consumer reads them back. One transaction
 * is rolled back on purpose; its event must never appear.
 */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import { Pool } from 'pg';
import { createJsonLogger, createOutbox, readCloudEventHeaders, type Logger, type OutboxEvent, type OutboxStore } from '../domain/outbox';
import { OrderRuleViolation, type OrderLine } from '../domain/orders/order';
import { ORDERS_TOPIC, orderEventRegistry, orderEventRegistryV1 } from '../domain/orders/order-events';
import { MongoOrderService } from '../domain/orders/mongodb-order-service';
import type { OrderService } from '../domain/orders/order-service';
import { PostgresOrderService } from '../domain/orders/postgres-order-service';
import { MongoOutboxStore } from '../domain/stores/mongodb';
import { PostgresOutboxStore } from '../domain/stores/postgres';
import { DEFAULT_MONGODB_URI } from '../workers/process/config';
import { createRelay, mapLimit } from '../workers/relay/relay';
import { eventWorkflowId } from '../workers/relay/start-event-workflow';
import { startOutboxWorker } from '../workers/worker/worker';
import { createTopicsWithLeaders } from '../workers/kafka/topics';

const ORDERS = 30;
const CANCELLATIONS = 10;
const CONCURRENCY = 4;
const DELIVERY_TIMEOUT_MS = 120_000;
/** The demo's PostgreSQL schema or MongoDB database, dropped and created anew on every run. */
const SCHEMA = 'txoutbox_demo';
const TASK_QUEUE = 'txoutbox-demo';

interface Committed {
  event: OutboxEvent;
  committedAt: number;
}

async function main(): Promise<void> {
  const temporalAddress = process.env.TXOUTBOX_TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  const uiUrl = process.env.TXOUTBOX_TEMPORAL_UI_URL ?? 'http://127.0.0.1:8233';
  const brokers = (process.env.TXOUTBOX_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
  const logger = createJsonLogger('warn');
  Runtime.install({ logger: new DefaultLogger('WARN') });

  // Arrange the demo's own database and topic, fresh for every run, an independent reader of the
  // topic, and the pipeline.
  const { kind, store, orders, ordersV1, close: closeStore } = await demoStore(logger);
  console.log(`store: ${kind}`);
  const kafka = new Kafka({ clientId: 'txoutbox-demo', brokers, logLevel: logLevel.NOTHING });
  const reader = await startReader(kafka);
  const pipeline = await startPipeline({ temporalAddress, store, kafka, logger });

  // Act: the service commits its transactions, and one it rolls back.
  const writes = await writeOrders(orders, ordersV1);

  // Assert and report.
  const rows = await awaitDelivery(store, writes, reader.received);
  const ok = report(writes, reader.received, rows, uiUrl);

  await pipeline.stop();
  await reader.stop();
  await closeStore();
  if (!ok) {
    console.error('demo FAILED: not every committed event was published exactly as expected (see the table above)');
    process.exit(1);
  }
  console.log('demo OK: every committed event reached Kafka; the rolled-back one did not.');
}

/** What reached Kafka, by event id: where, how often, and as which version of its type. */
type Received = Map<string, { partition: number; offset: string; count: number; version: number }>;

/** The orders topic (created fresh) and a reader of it that is not txoutbox's, to see what really reached Kafka. */
async function startReader(kafka: Kafka): Promise<{ received: Received; stop(): Promise<void> }> {
  const admin = kafka.admin();
  await admin.connect();
  await createTopicsWithLeaders(admin, [{ topic: ORDERS_TOPIC, numPartitions: 3 }]);
  const received: Received = new Map();
  const consumer = kafka.consumer({ groupId: `txoutbox-demo-${Date.now()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: ORDERS_TOPIC, fromBeginning: false });
  const consumerReady = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const { id, schemaVersion } = readCloudEventHeaders(message.headers ?? {});
      const seen = received.get(id);
      received.set(id, { partition, offset: message.offset, count: (seen?.count ?? 0) + 1, version: schemaVersion });
    },
  });
  await consumerReady;
  return {
    received,
    stop: async () => {
      await consumer.disconnect();
      await admin.disconnect();
    },
  };
}

/** The pipeline: worker (publish workflows and activity) and relay (change feed → workflows). */
async function startPipeline(deps: { temporalAddress: string; store: OutboxStore<never>; kafka: Kafka; logger: Logger }): Promise<{ stop(): Promise<void> }> {
  const { temporalAddress, store, kafka, logger } = deps;
  const worker = await startOutboxWorker({ temporalAddress, taskQueue: TASK_QUEUE, store, kafka, logger, contracts: orderEventRegistry() });
  const connection = await Connection.connect({ address: temporalAddress });
  const client = new Client({ connection });
  const relay = createRelay({ store, workflowClient: client.workflow, taskQueue: TASK_QUEUE, maxWaitMs: 200, logger });
  const running = await relay.start();
  return {
    stop: async () => {
      await running.shutdown();
      await worker.shutdown();
      await connection.close();
    },
  };
}

/** The demo's writes: the events committed, and the one event of a transaction rolled back on purpose. */
interface Writes {
  committed: Committed[];
  rolledBack: { orderId: string; eventId: string };
  writeMs: number;
}

/**
 * The service commits its transactions; every third order comes from an instance not yet redeployed
 * with OrderPlaced v2, so the topic carries the type in both versions (as written). One transaction
 * is rolled back on purpose: the order and its event are written, then payment fails.
 */
async function writeOrders(orders: OrderService, ordersV1: OrderService): Promise<Writes> {
  const committed: Committed[] = [];
  const runId = Date.now().toString(36);
  const orderIds = Array.from({ length: ORDERS }, (_, i) => `order-${runId}-${String(i + 1).padStart(2, '0')}`);
  const t0 = Date.now();
  await mapLimit(orderIds.map((orderId, i) => ({ orderId, i })), CONCURRENCY, async ({ orderId, i }) => {
    const events = await (i % 3 === 0 ? ordersV1 : orders).handle({ kind: 'PlaceOrder', orderId, customerId: `customer-${i % 7}`, lines: linesFor(i) });
    const committedAt = Date.now();
    for (const event of events) committed.push({ event, committedAt });
  });
  await mapLimit(orderIds.slice(0, CANCELLATIONS), CONCURRENCY, async (orderId) => {
    const events = await orders.handle({ kind: 'CancelOrder', orderId, reason: 'customer changed their mind' });
    const committedAt = Date.now();
    for (const event of events) committed.push({ event, committedAt });
  });
  const rolledBack = { orderId: `order-${runId}-declined`, eventId: '' };
  try {
    await orders.handle({ kind: 'PlaceOrder', orderId: rolledBack.orderId, customerId: 'customer-x', lines: linesFor(0) }, async (added) => {
      rolledBack.eventId = added[0]?.id ?? '';
      throw new OrderRuleViolation('payment declined');
    });
  } catch (err) {
    if (!(err instanceof OrderRuleViolation)) throw err;
  }
  if (rolledBack.eventId === '') throw new Error('the rolled-back transaction wrote no event: the demo cannot check it');
  return { committed, rolledBack, writeMs: Date.now() - t0 };
}

/**
 * Waits until the independent consumer has every committed event, then reads the rows until each
 * says published (the store's mark follows Kafka's acknowledgement, so it can come after the
 * consumer read the message); both bounded by one deadline. The rows found, by event id.
 */
async function awaitDelivery(store: OutboxStore<never>, writes: Writes, received: Received): Promise<Map<string, OutboxEvent>> {
  const { committed, rolledBack } = writes;
  const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
  while (committed.some((c) => !received.has(c.event.id)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const rows = new Map<string, OutboxEvent>();
  const readRows = async (): Promise<void> => {
    for (const id of [...committed.map((c) => c.event.id), rolledBack.eventId]) {
      const stored = await store.get(id);
      if (stored !== null) rows.set(id, stored);
    }
  };
  await readRows();
  while (committed.some((c) => rows.get(c.event.id)?.status !== 'published') && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    await readRows();
  }
  return rows;
}

/** Prints every committed event (where it landed, its commit→Kafka latency) and the totals; true when all is as expected. */
function report(writes: Writes, received: Received, rows: Map<string, OutboxEvent>, uiUrl: string): boolean {
  const { committed, rolledBack, writeMs } = writes;
  committed.sort((a, b) => (a.event.id < b.event.id ? -1 : 1));
  const latencies: number[] = [];
  console.log('');
  console.log('event id                              type                       partition/offset  commit→Kafka');
  console.log('------------------------------------  -------------------------  ----------------  ------------');
  for (const { event, committedAt } of committed) {
    const landed = received.get(event.id);
    const publishedAt = rows.get(event.id)?.publishedAt?.getTime();
    const latency = publishedAt === undefined ? undefined : Math.max(0, publishedAt - committedAt);
    if (latency !== undefined) latencies.push(latency);
    console.log(
      `${event.id}  ${`${event.type} v${landed?.version ?? event.schemaVersion}`.padEnd(25)}  ${(landed ? `${landed.partition}/${landed.offset}` : 'MISSING').padEnd(16)}  ${latency === undefined ? '-' : `${latency} ms`}`,
    );
  }
  const published = committed.filter((c) => rows.get(c.event.id)?.status === 'published').length;
  const delivered = committed.filter((c) => received.has(c.event.id)).length;
  const duplicates = [...received.values()].filter((r) => r.count > 1).length;
  const rolledBackLeaked = rows.has(rolledBack.eventId) || received.has(rolledBack.eventId);
  const sorted = [...latencies].sort((a, b) => a - b);
  console.log('');
  console.log(`committed events:        ${committed.length} (${ORDERS} OrderPlaced, ${CANCELLATIONS} OrderCancelled) in ${writeMs} ms`);
  const placedBy = (v: number): number => committed.filter((c) => c.event.type === 'orders.OrderPlaced' && received.get(c.event.id)?.version === v).length;
  console.log(`published (store):       ${published}`);
  console.log(`OrderPlaced in Kafka:    ${placedBy(1)} as v1, ${placedBy(2)} as v2 (ce_schemaversion)`);
  console.log(`received from Kafka:     ${delivered} (event ids seen more than once: ${duplicates})`);
  console.log(
    `rolled back on purpose:  1 transaction (order ${rolledBack.orderId}); its event ${rolledBack.eventId} ${rolledBackLeaked ? 'LEAKED' : 'is in neither the store nor Kafka'}`,
  );
  console.log(`commit→Kafka latency:    p50 ${percentile(sorted, 50)} ms, p99 ${percentile(sorted, 99)} ms, max ${sorted[sorted.length - 1] ?? '-'} ms`);
  const sample = committed[0];
  if (sample) console.log(`one event in the Web UI:  ${uiUrl}/namespaces/default/workflows/${eventWorkflowId(sample.event.id)}`);
  console.log('');
  return published === committed.length && delivered === committed.length && !rolledBackLeaked;
}

/**
 * The demo's store: MongoDB unless TXOUTBOX_STORE=postgres, at the address scripts/infra.sh printed
 * (TXOUTBOX_MONGODB_URI, TXOUTBOX_PG_URL).
 */
async function demoStore(logger: Logger): Promise<{ kind: string; store: OutboxStore<never>; orders: OrderService; ordersV1: OrderService; close: () => Promise<void> }> {
  const registry = orderEventRegistry();
  const registryV1 = orderEventRegistryV1();
  const source = 'txoutbox-demo/orders';
  if ((process.env.TXOUTBOX_STORE ?? 'mongodb') === 'postgres') {
    const pool = new Pool({ connectionString: process.env.TXOUTBOX_PG_URL ?? 'postgres://txoutbox:txoutbox@127.0.0.1:5432/txoutbox', max: 20 });
    await pool.query(`drop schema if exists "${SCHEMA}" cascade`);
    const store = new PostgresOutboxStore({ pool, schema: SCHEMA, logger });
    await store.setup();
    const orders = new PostgresOrderService(pool, createOutbox({ store, registry, source }), SCHEMA);
    await orders.setup();
    const ordersV1 = new PostgresOrderService(pool, createOutbox({ store, registry: registryV1, source }), SCHEMA);
    return { kind: 'PostgreSQL', store, orders, ordersV1, close: async () => { await store.close(); await pool.end(); } };
  }
  const uri = process.env.TXOUTBOX_MONGODB_URI ?? process.env.MONGODB_URI ?? DEFAULT_MONGODB_URI;
  const client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 10_000 });
  const db = client.db(SCHEMA);
  await db.dropDatabase();
  const store = new MongoOutboxStore({ db, logger });
  await store.setup();
  const orders = new MongoOrderService(client, db, createOutbox({ store, registry, source }));
  await orders.setup();
  const ordersV1 = new MongoOrderService(client, db, createOutbox({ store, registry: registryV1, source }));
  return { kind: 'MongoDB', store, orders, ordersV1, close: async () => { await store.close(); await client.close(); } };
}

function linesFor(i: number): OrderLine[] {
  return [
    { sku: `sku-${i % 5}`, quantity: 1 + (i % 3), unitPriceCents: 1299 },
    { sku: 'gift-wrap', quantity: 1, unitPriceCents: 250 },
  ];
}

function percentile(sorted: number[], p: number): number | string {
  if (sorted.length === 0) return '-';
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? '-';
}

main().catch((err: unknown) => {
  console.error('demo failed:', err);
  process.exit(1);
});
