/** The benchmark's settings (its command line), the servers it measures on, and what every section shares: rows, variants, topics, events. */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { z } from 'zod';
import { applyOutboxDefaults, buildEvent, createEventIdGenerator, createEventRegistry, defineEventType, type OutboxEvent } from '../../domain/outbox';
import { StoreKind } from '../../test/support/pipeline-store';
import { mapLimit } from '../../workers/relay/relay';
import { stopIdleRequestQueueTimers } from '../../workers/kafka/request-queue-idle';
import { createTopicsWithLeaders } from '../../workers/kafka/topics';

// The baselines' kafkajs clients, in this process, without kafkajs 2.2.4's idle 1 ms timer loop, as
// txoutbox's own (request-queue-idle.ts): the comparison is of relays, not of that bug.
stopIdleRequestQueueTimers();

export const REPO = join(__dirname, '..', '..');
export const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000' },
    keys: { type: 'string', default: '20' },
    out: { type: 'string', default: '' },
    quick: { type: 'boolean', default: false },
    headline: { type: 'boolean', default: false },
    backlog: { type: 'string', default: '20000' },
    engines: { type: 'boolean', default: false },
    writes: { type: 'boolean', default: false },
    only: { type: 'string', default: '' },
    steps: { type: 'string', default: '' },
    'cpu-prof': { type: 'string', default: '' },
    temporal: { type: 'string', default: '' },
    stores: { type: 'string', default: 'postgres,mongodb' },
    logs: { type: 'string', default: '' },
    'fast-events': { type: 'string', default: '20000' },
    'kafka-cluster': { type: 'string', default: '' },
  },
});
export const N = Number(values.events);
/**
 * Events for the fast path's end-to-end rows on PostgreSQL, the polling relay's and the writers
 * alone (--fast-events, default 20,000): at two thousand events a second, 1,000 events last about
 * half a second, too short for a rate or a p99 (and see FAST_PATH_WARM_UP for a fresh relay's first
 * second). 5,000 (the default until 2026-12-07) lasted two to three seconds: seven runs of
 * `--only fast` put the fast path at 0.81 to 1.03 of the polling relay, and a fresh relay still
 * spent 218 µs of CPU per event against 160 over 20,000 (V8 still optimising its code).
 */
export const FAST_N = Number(values['fast-events']);
/**
 * Events the fast path's end-to-end rows send through their fresh relay before the clock starts
 * (about a second of its traffic: SecantusDB writes about a hundred a second), left out of the
 * figures. A relay process's first second under load is slow: its code is not yet optimised (V8)
 * while the writers take the CPU, and its sends took 60 to 300 ms each (a few ms once warm). With one
 * event of warm-up that second set the rows' p95 and p99 (the half-rate row's p99: 368 ms in the
 * headline run of ff4042f on 2026-12-06; 28 and 39 ms after 1,000 events). A relay that has run for a
 * second has paid it; a restarted one pays it again, and the drain rows, which restart their relay,
 * keep it in their figures.
 */
export const FAST_PATH_WARM_UP: Record<StoreKind, number> = { postgres: 1000, mongodb: 100 };
/**
 * Events written before a relay starts, for the drain-rate rows (--backlog, default 20,000): a
 * backlog of 5,000 drained in under a second, and the polling relay's drain measured 6,089 and
 * 13,754 events/s in one run of 2026-12-06; with 20,000 its two drains of a run were within 10%.
 */
export const BACKLOG = Number(values.backlog);
export const K = Number(values.keys);
/** The largest backlog written to MongoDB (SecantusDB) for the drain row. */
export const MONGODB_BACKLOG = 1000;
/** The tuning steps, each one change from the defaults, all writing as fast as possible. */
export const TUNING: Variant[] = [
  { id: 'activity_first', name: 'step: every attempt an activity (TXOUTBOX_PUBLISH_FIRST_ATTEMPT_LOCAL=false, the default before issue 31)', env: { TXOUTBOX_PUBLISH_FIRST_ATTEMPT_LOCAL: 'false' } },
  { id: 'one_process', name: 'step: one process (TXOUTBOX_RELAY_RUNS_WORKER=true: the worker in the relay, eager start)', env: { TXOUTBOX_RELAY_RUNS_WORKER: 'true' } },
  { id: 'local', name: 'step: publish as a local activity', env: { TXOUTBOX_PUBLISH_LOCAL_ACTIVITY: 'true' } },
  { id: 'start4', name: 'step: relay start concurrency 4 (default 16)', env: { TXOUTBOX_RELAY_START_CONCURRENCY: '4' } },
  { id: 'start64', name: 'step: relay start concurrency 64 (default 16)', env: { TXOUTBOX_RELAY_START_CONCURRENCY: '64' } },
  { id: 'wft100', name: 'step: worker 100 workflow tasks, 50 polls (default 40, 10)', env: { TXOUTBOX_WORKER_WORKFLOW_TASKS: '100', TXOUTBOX_WORKER_WORKFLOW_POLLS: '50' } },
  { id: 'wft10', name: 'step: worker 10 workflow tasks, 4 polls (default 40, 10)', env: { TXOUTBOX_WORKER_WORKFLOW_TASKS: '10', TXOUTBOX_WORKER_WORKFLOW_POLLS: '4' } },
  { id: 'linger', name: 'step: coalescing producer, linger 5 ms', env: { TXOUTBOX_PRODUCER_LINGER_MS: '5' } },
  { id: 'embedded', name: 'step: relay runs the worker in its process, one connection, no eager start', env: { TXOUTBOX_RELAY_RUNS_WORKER: 'true', TXOUTBOX_EAGER_START: 'false' } },
  { id: 'eager', name: 'step: relay runs the worker in its process, eager workflow start', env: { TXOUTBOX_RELAY_RUNS_WORKER: 'true', TXOUTBOX_EAGER_START: 'true' } },
  { id: 'eager_local', name: 'step: relay runs the worker, eager start, publish as a local activity', env: { TXOUTBOX_RELAY_RUNS_WORKER: 'true', TXOUTBOX_EAGER_START: 'true', TXOUTBOX_PUBLISH_LOCAL_ACTIVITY: 'true' } },
];

export const servers = {
  temporal: process.env.TXOUTBOX_TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
  brokers: (process.env.TXOUTBOX_KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
  pg: process.env.TXOUTBOX_PG_URL ?? 'postgres://txoutbox:txoutbox@127.0.0.1:5432/txoutbox',
};
export const kafka = new Kafka({ clientId: 'txoutbox-bench', brokers: servers.brokers, logLevel: logLevel.NOTHING });
export const stamp = Date.now().toString(36);

export interface Row {
  name: string;
  /** The outbox's store, for the txoutbox rows. */
  store?: StoreKind;
  eventsPerSecond: number;
  p50?: number;
  p95?: number;
  p99?: number;
  relayCpuS?: number;
  workerCpuS?: number;
  relayPeakMb?: number;
  workerPeakMb?: number;
  historyPerEvent?: number;
  /** Requests the outbox's processes sent to the store, per event (MongoDB commands, PostgreSQL statements). */
  storeTripsPerEvent?: number;
  /** RPCs Temporal's frontend served during the row, per event (every client's: relay, worker, pollers). */
  temporalRpcsPerEvent?: number;
  note?: string;
}

/** A Prometheus /metrics page, or '' when it does not answer within 5 s. */
export async function scrapeMetrics(url: string): Promise<string> {
  return fetch(url, { signal: AbortSignal.timeout(5_000) }).then((r) => r.text(), () => '');
}

/** A metric's series on a /metrics page: each one's labels (the text between its braces) and value. */
function seriesOf(text: string, name: string): Array<{ labels: string; value: number }> {
  return [...text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} ([0-9.e+]+)$`, 'gm'))].map((m) => ({ labels: m[1] ?? '', value: Number(m[2]) }));
}

/** The sum of a metric's series whose labels contain `labelsInclude`; NaN when it has none. */
export function sumOfSeries(text: string, name: string, labelsInclude = ''): number {
  const series = seriesOf(text, name).filter((s) => s.labels.includes(labelsInclude));
  return series.length === 0 ? NaN : series.reduce((sum, s) => sum + s.value, 0);
}

/** A metric's series by the value of one label: `{ find: 12, update: 3 }`. */
export function seriesByLabel(text: string, name: string, label: string): Record<string, number> {
  const byLabel: Record<string, number> = {};
  for (const { labels, value } of seriesOf(text, name)) {
    const key = new RegExp(`${label}="([^"]*)"`).exec(labels)?.[1] ?? '';
    byLabel[key] = (byLabel[key] ?? 0) + value;
  }
  return byLabel;
}

/**
 * The RPCs the Temporal frontend at `address` has served so far: the sum of its Prometheus
 * service_requests over every operation, read from port + 9 (where scripts/infra.sh has the dev server
 * serve /metrics); NaN when that does not answer.
 */
export async function temporalRpcs(address = servers.temporal): Promise<number> {
  const [host, port] = address.split(':');
  return sumOfSeries(await scrapeMetrics(`http://${host}:${Number(port) + 9}/metrics`), 'service_requests', 'service_name="frontend"');
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

export const schema = z.object({ orderId: z.string(), line: z.number().int(), sku: z.string(), priceCents: z.number().int() });

export function payload(i: number): { orderId: string; line: number; sku: string; priceCents: number } {
  return { orderId: `order-${i % K}`, line: i, sku: `sku-${i % 97}`, priceCents: 1000 + (i % 5000) };
}

/** A topic of 6 partitions, with the brokers' default replication (3 on the scripts' cluster). */
export async function createTopic(topic: string, brokers = servers.brokers): Promise<void> {
  const admin = (brokers === servers.brokers ? kafka : new Kafka({ clientId: 'txoutbox-bench', brokers, logLevel: logLevel.NOTHING })).admin();
  await admin.connect();
  await createTopicsWithLeaders(admin, [{ topic, numPartitions: 6 }]);
  await admin.disconnect();
}

/** Real envelopes (built by the outbox's own validation), for the baselines' messages. */
export async function sampleEvents(topic: string, count = N): Promise<OutboxEvent[]> {
  const registry = createEventRegistry([defineEventType({ type: 'bench.LineAdded', schemaVersion: 1, aggregateType: 'order', topic, schema })]);
  const options = applyOutboxDefaults({ source: 'bench' });
  const newId = createEventIdGenerator();
  return mapLimit(Array.from({ length: count }, (_, i) => i), 64, (i) =>
    buildEvent({ type: 'bench.LineAdded', aggregateId: `order-${i % K}`, payload: payload(i) }, registry, options, newId),
  );
}

/** A txoutbox configuration to measure: TXOUTBOX_* settings given to its relay and worker processes. */
export interface Variant {
  id: string;
  name: string;
  env?: Record<string, string>;
  /** The relay publishes the benchmark's topic itself (TXOUTBOX_FAST_PATH_TOPICS). */
  fastPath?: boolean;
  /** Write this many events while the relay is stopped, then time its drain alone (from ready to all published). */
  backlog?: number;
  /** The outbox's store. @default StoreKind.mongodb (the default store) */
  store?: StoreKind;
  /** Events written end to end. @default N (--events) */
  events?: number;
  /**
   * Write an ordered type (`ordering: 'per-key'`) over this many keys (one key: a hot key).
   * @default an unordered type, its aggregate ids over K (--keys) keys
   */
  keys?: number;
}

/**
 * What one write costs (--writes): N transactions on a fresh store, 8 at a time, each writing one event
 * (a) through outbox.add() (validation, canonical JSON, hash, insert), (b) as the same row already
 * built, through store.insert() alone, and (c) building it alone (no database). No relay runs.
 */

/** The stores --stores names, PostgreSQL first. */
export function chosenStores(): StoreKind[] {
  return [StoreKind.postgres, StoreKind.mongodb].filter((k) => values.stores.split(',').includes(k));
}

/** The backlog a drain row writes: --backlog, and at most MONGODB_BACKLOG on SecantusDB (about ten outbox transactions a second). */
export function backlogFor(store: StoreKind): number {
  return store === StoreKind.mongodb ? Math.min(BACKLOG, MONGODB_BACKLOG) : BACKLOG;
}

/**
 * A row's outbox: a topic (and task queue) named `name`, a database (MongoDB) or schema (PostgreSQL)
 * of its own on the servers the scripts started, an outbox writing to it, and the relay's and the
 * worker's settings for them.
 */
