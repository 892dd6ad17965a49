/**
 * Benchmark (not a test): txoutbox end to end against its limits, measured side by side in one run.
 *
 *   npm run bench -- [--events 1000] [--keys 20] [--backlog 5000] [--out BENCHMARKS.md] [--quick] [--engines] [--writes] [--only engines,writes,steps,fast,relays] [--stores postgres,mongodb] [--logs DIR] [--steps id,...] [--cpu-prof DIR] [--temporal NAME=host:port,...] [--fast-events N] [--kafka-cluster host:port,...]
 *
 * Rows:
 *   raw kafkajs, batched        the same messages in batches of 100: the broker's ceiling for this client
 *   raw kafkajs, one per send   one message per send, 32 in flight: what one publish activity does, no Temporal
 *   bare Temporal               N workflows with one no-op activity on the same server: the engine's ceiling
 *   bare Temporal on ...        --engines: the same on fresh dev servers, default SQLite pragmas and WAL, twice each
 *   ... on NAME                 --temporal NAME=host:port,...: bare Temporal and the default mode
 *                                (max and half rate, PostgreSQL store) on each engine named
 *   outbox.add() / insert alone --writes: one event per transaction through add(), the same row through
 *                                store.insert() alone, and building it alone, on each store
 *   plain polling relay         SELECT ... FOR UPDATE SKIP LOCKED + batched send + UPDATE, no Temporal
 *   txoutbox, as fast as possible   relay and worker as separate processes, writes through outbox.add()
 *   txoutbox, at half that rate     the same, writes paced at half the measured maximum: latency under load
 *   txoutbox fast path               the relay publishes in batches, workflows only on failure (issue 8), max and half rate;
 *                                    on PostgreSQL with --fast-events events (default --events), as the polling rows
 *   ..., draining a backlog          polling relay and fast path (feed batches of 100 and 500): --backlog events written first, the relay's drain rate alone
 *   --only relays                    the fast path draining a backlog with 1, 2 and 4 partitioned relays (issue 17), and 1 again
 *   --only fast                      the fast path rows alone (both stores, or --stores) next to the
 *                                    polling relay (writes in one transaction per event, and autocommitted), end to end and draining
 *   ... on the Kafka cluster         --kafka-cluster BROKERS: the default mode and the fast path (PostgreSQL store) on the
 *                                    single broker and on that cluster (replication factor 3, min.insync.replicas=2,
 *                                    `TXOUTBOX_KAFKA=cluster bash scripts/infra.sh env` prints it), alternating, in this run
 *   step: ...                        one tuning change each (TUNING below), as fast as possible (not with --quick)
 *   default mode again               the first txoutbox row repeated last: how much the shared server drifted
 * The txoutbox rows (default mode, half rate, fast path, backlog) run on each store, MongoDB first (the
 * default store) then PostgreSQL, in the same table; the tuning steps run on PostgreSQL.
 * For the txoutbox rows: events/s from the first commit to the last Kafka acknowledgement,
 * commit-to-Kafka latency percentiles, CPU seconds and peak RSS of the relay and the worker (their
 * own /metrics), Temporal history events per event.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, homedir, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { Client as PgClient, Pool } from 'pg';
import { z } from 'zod';
import {
  applyOutboxDefaults,
  buildEvent,
  createEventIdGenerator,
  createEventRegistry,
  createOutbox,
  defineEventType,
  eventIdTime,
  toKafkaMessage,
  type OutboxEvent,
} from '../domain/outbox';
import { withPgTransaction } from '../domain/stores/postgres';
import { pipelineStore, StoreKind } from '../test/support/pipeline-store';
import { binArgs } from '../test/support/processes';
import { waitFor } from '../test/support/servers';
import { mapLimit } from '../workers/relay/relay';
import { eventWorkflowId } from '../workers/relay/start-event-workflow';

const REPO = join(__dirname, '..');
const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000' },
    keys: { type: 'string', default: '20' },
    out: { type: 'string', default: '' },
    quick: { type: 'boolean', default: false },
    backlog: { type: 'string', default: '5000' },
    engines: { type: 'boolean', default: false },
    writes: { type: 'boolean', default: false },
    only: { type: 'string', default: '' },
    steps: { type: 'string', default: '' },
    'cpu-prof': { type: 'string', default: '' },
    temporal: { type: 'string', default: '' },
    stores: { type: 'string', default: 'postgres,mongodb' },
    logs: { type: 'string', default: '' },
    'fast-events': { type: 'string', default: '' },
    'kafka-cluster': { type: 'string', default: '' },
  },
});
const N = Number(values.events);
/**
 * Events for the fast path's end-to-end rows on PostgreSQL (--fast-events, default --events): at
 * about a thousand events a second, 1,000 events are mostly start-up and tail.
 */
const FAST_N = values['fast-events'] === '' ? N : Number(values['fast-events']);
/** Events written before a relay starts, for the drain-rate rows. */
const BACKLOG = Number(values.backlog);
const K = Number(values.keys);
/** The largest backlog written to MongoDB (SecantusDB) for the drain row. */
const MONGODB_BACKLOG = 1000;
/** The tuning steps, each one change from the defaults, all writing as fast as possible. */
const TUNING: Variant[] = [
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

const servers = {
  temporal: process.env.TXOUTBOX_TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
  brokers: (process.env.TXOUTBOX_KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
  pg: process.env.TXOUTBOX_PG_URL ?? 'postgres://txoutbox:txoutbox@127.0.0.1:5432/txoutbox',
};
const kafka = new Kafka({ clientId: 'txoutbox-bench', brokers: servers.brokers, logLevel: logLevel.NOTHING });
const stamp = Date.now().toString(36);

interface Row {
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
  note?: string;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

const schema = z.object({ orderId: z.string(), line: z.number().int(), sku: z.string(), priceCents: z.number().int() });

function payload(i: number): { orderId: string; line: number; sku: string; priceCents: number } {
  return { orderId: `order-${i % K}`, line: i, sku: `sku-${i % 97}`, priceCents: 1000 + (i % 5000) };
}

/** A topic of 6 partitions, with the brokers' default replication (3 on the scripts' cluster). */
async function createTopic(topic: string, brokers = servers.brokers): Promise<void> {
  const admin = (brokers === servers.brokers ? kafka : new Kafka({ clientId: 'txoutbox-bench', brokers, logLevel: logLevel.NOTHING })).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 6 }], waitForLeaders: true });
  await admin.disconnect();
}

/** Real envelopes (built by the outbox's own validation), for the baselines' messages. */
async function sampleEvents(topic: string, count = N): Promise<OutboxEvent[]> {
  const registry = createEventRegistry([defineEventType({ type: 'bench.LineAdded', schemaVersion: 1, aggregateType: 'order', topic, schema })]);
  const options = applyOutboxDefaults({ source: 'bench' });
  const newId = createEventIdGenerator();
  return mapLimit(Array.from({ length: count }, (_, i) => i), 64, (i) =>
    buildEvent({ type: 'bench.LineAdded', aggregateId: `order-${i % K}`, payload: payload(i) }, registry, options, newId),
  );
}

async function rawKafka(batched: boolean): Promise<Row> {
  const topic = `bench-raw-${batched ? 'batch' : 'single'}-${stamp}`;
  await createTopic(topic);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const messages = (await sampleEvents(topic)).map(toKafkaMessage);
  const t0 = performance.now();
  if (batched) {
    for (let i = 0; i < messages.length; i += 100) await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 100) });
  } else {
    await mapLimit(messages, 32, (m) => producer.send({ topic, acks: -1, messages: [m] }));
  }
  const seconds = (performance.now() - t0) / 1000;
  await producer.disconnect();
  return { name: batched ? 'raw kafkajs, batches of 100' : 'raw kafkajs, one message per send (32 in flight)', eventsPerSecond: N / seconds };
}

async function bareTemporal(address = servers.temporal, name = 'bare Temporal: one workflow + one no-op activity each'): Promise<Row> {
  const taskQueue = `bench-bare-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowsPath: require.resolve('./bench-noop-workflow'),
    activities: { noop: async () => undefined },
  });
  const clientConnection = await Connection.connect({ address });
  const client = new Client({ connection: clientConnection });
  const t0 = performance.now();
  await worker.runUntil(async () => {
    const handles = await mapLimit(
      Array.from({ length: N }, (_, i) => i),
      32,
      (i) => client.workflow.start('noopWorkflow', { taskQueue, workflowId: `${taskQueue}-${i}` }),
    );
    await mapLimit(handles, 64, (h) => h.result());
  });
  const seconds = (performance.now() - t0) / 1000;
  await clientConnection.close();
  await connection.close();
  return { name, eventsPerSecond: N / seconds };
}

/** The dev server's settings measured side by side (--engines), each on a fresh server of its own. */
const ENGINES: Array<{ name: string; args: string[] }> = [
  { name: 'dev server, SQLite default pragmas (fresh database)', args: [] },
  { name: 'dev server, SQLite journal_mode=wal, synchronous=off (fresh database)', args: ['--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=off'] },
];

/** The Temporal CLI the scripts built (scripts/infra.sh keeps it in the cache). */
function temporalCli(): string {
  const cache = process.env.TXOUTBOX_CACHE ?? join(homedir(), '.cache', 'txoutbox');
  const dir = readdirSync(cache).find((d) => d.startsWith('temporal-cli-'));
  if (dir === undefined) throw new Error(`no Temporal CLI in ${cache}: run scripts/infra.sh up first`);
  return join(cache, dir, 'temporal');
}

/** Bare Temporal on a fresh dev server started with `args`, then stopped. */
async function bareTemporalOn(engine: { name: string; args: string[] }, port: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'txoutbox-bench-engine-'));
  const child = spawn(temporalCli(), ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port), '--db-filename', join(dir, 'temporal.db'), '--log-level', 'error', ...engine.args], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    const address = `127.0.0.1:${port}`;
    await waitFor(
      () =>
        Connection.connect({ address, connectTimeout: 1_000 }).then(
          async (c) => {
            const ok = await c.workflowService.describeNamespace({ namespace: 'default' }).then(() => true, () => false);
            await c.close();
            return ok;
          },
          () => false,
        ),
      { timeoutMs: 60_000, intervalMs: 500, what: `the dev server on ${address}` },
    );
    return await bareTemporal(address, `bare Temporal on a ${engine.name}`);
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The plain polling relay. `transactional`: each write is its own BEGIN/INSERT/COMMIT, the shape of
 * an outbox writer's (txoutbox's rows write that way); otherwise one autocommitted INSERT each.
 */
async function pollingRelay(pool: Pool, backlog: number | null = null, transactional = false, events = N): Promise<Row> {
  const count = backlog ?? events;
  const topic = `bench-poll-${stamp}${backlog === null ? '' : '-backlog'}`;
  await createTopic(topic);
  const pgSchema = `bench_${stamp}${backlog === null ? '' : '_backlog'}`;
  const table = `"${pgSchema}".poll_outbox`;
  await pool.query(`create schema if not exists "${pgSchema}"`);
  await pool.query(`create table ${table} (id bigserial primary key, key text, value text, headers jsonb, published boolean not null default false, created_at timestamptz default clock_timestamp(), published_at timestamptz)`);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const messages = (await sampleEvents(topic, count)).map(toKafkaMessage);
  const insert = (client: Pick<Pool, 'query'>, m: (typeof messages)[number]) => client.query(`insert into ${table} (key, value, headers) values ($1, $2, $3)`, [m.key, m.value, JSON.stringify(m.headers)]);
  const insertAll = () => mapLimit(messages, 8, (m) => (transactional ? withPgTransaction(pool, ({ client }) => insert(client, m)) : insert(pool, m)));
  if (backlog !== null) await insertAll(); // written before the relay runs: its drain rate alone
  let stop = false;
  const t0 = performance.now();
  const relay = (async () => {
    while (!stop) {
      const sent = await withPgTransaction(pool, async ({ client }) => {
        const { rows } = await client.query<{ id: string; key: string; value: string; headers: Record<string, string> }>(
          `select id, key, value, headers from ${table} where not published order by id limit 100 for update skip locked`,
        );
        if (rows.length === 0) return 0;
        await producer.send({ topic, acks: -1, messages: rows.map((r) => ({ key: r.key, value: r.value, headers: r.headers })) });
        await client.query(`update ${table} set published = true, published_at = clock_timestamp() where id = any($1::bigint[])`, [rows.map((r) => r.id)]);
        return rows.length;
      });
      if (sent === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  if (backlog === null) await insertAll();
  for (;;) {
    const { rows } = await pool.query<{ n: string }>(`select count(*)::text as n from ${table} where not published`);
    if (rows[0]?.n === '0') break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const seconds = (performance.now() - t0) / 1000;
  const { rows } = await pool.query<{ ms: string }>(`select extract(epoch from (published_at - created_at)) * 1000 as ms from ${table} order by 1`);
  const latencies = rows.map((r) => Number(r.ms));
  stop = true;
  await relay;
  await producer.disconnect();
  await pool.query(`drop schema "${pgSchema}" cascade`);
  return {
    name:
      backlog !== null
        ? `plain polling relay, draining a backlog of ${count} written before it started`
        : `plain polling relay (no Temporal), batches of 100, ${count} events, ${transactional ? 'one write transaction per event (BEGIN, INSERT, COMMIT)' : 'autocommitted INSERTs'}`,
    eventsPerSecond: count / seconds,
    // A backlog's latency is its queueing: not reported.
    p50: backlog === null ? percentile(latencies, 50) : undefined,
    p95: backlog === null ? percentile(latencies, 95) : undefined,
    p99: backlog === null ? percentile(latencies, 99) : undefined,
  };
}

/** The relay and worker processes running now, stopped if the run fails. */
const children = new Set<ChildProcess>();

interface ProcessStats {
  cpuSeconds: number;
  peakRssMb: number;
}

function startProcess(bin: 'relay' | 'worker', env: NodeJS.ProcessEnv, prefix: string): { child: ChildProcess; port: Promise<number>; stats: () => ProcessStats; sample: () => Promise<void> } {
  // --cpu-prof DIR: V8 CPU profiles of the relay and the worker, written when they exit (scripts/cpu-profile-top.ts reads them).
  const profile = values['cpu-prof'] === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', join(values['cpu-prof'], `${env.TXOUTBOX_TASK_QUEUE ?? 'run'}-${bin}`)];
  const child = spawn(process.execPath, [...profile, ...binArgs(bin)], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let resolvePort: (port: number) => void = () => undefined;
  const port = new Promise<number>((resolve) => (resolvePort = resolve));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    // --logs DIR: each process's log, to read what a row did.
    if (values.logs !== '') appendFileSync(join(values.logs, `${env.TXOUTBOX_TASK_QUEUE ?? 'run'}-${bin}.log`), chunk);
    for (const line of chunk.split('\n')) {
      const match = line.includes('health endpoints listening') ? /"port":(\d+)/.exec(line) : null;
      if (match) resolvePort(Number(match[1]));
    }
  });
  let cpuSeconds = 0;
  let peakRssMb = 0;
  const sample = async (): Promise<void> => {
    // A process too busy to answer within 5 s keeps its last figures (the run goes on).
    const text = await fetch(`http://127.0.0.1:${await port}/metrics`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.text(), () => '');
    if (text === '') return;
    const read = (name: string): number => Number(new RegExp(`^${prefix}${name} ([0-9.e+]+)`, 'm').exec(text)?.[1] ?? NaN);
    cpuSeconds = read('process_cpu_seconds_total');
    peakRssMb = Math.max(peakRssMb, read('process_resident_memory_bytes') / 1024 / 1024);
  };
  return { child, port, stats: () => ({ cpuSeconds, peakRssMb }), sample };
}

/** A txoutbox configuration to measure: TXOUTBOX_* settings given to its relay and worker processes. */
interface Variant {
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
}

/**
 * What one write costs (--writes): N transactions on a fresh store, 8 at a time, each writing one event
 * (a) through outbox.add() (validation, canonical JSON, hash, insert), (b) as the same row already
 * built, through store.insert() alone, and (c) building it alone (no database). No relay runs.
 */
async function writeCost(kind: StoreKind): Promise<Row[]> {
  const db = pipelineStore(kind);
  await db.setup();
  const topic = `bench-writes-${stamp}`;
  const registry = createEventRegistry([defineEventType({ type: 'bench.LineAdded', schemaVersion: 1, aggregateType: 'order', topic, schema })]);
  const outbox = createOutbox({ store: db.store, registry, source: 'bench' });
  const options = applyOutboxDefaults({ source: 'bench' });
  const newId = createEventIdGenerator();
  const count = kind === StoreKind.mongodb ? Math.min(N, 300) : N; // SecantusDB writes about ten transactions a second
  const timed = async (work: (i: number) => Promise<unknown>): Promise<number> => {
    const t0 = performance.now();
    await mapLimit(Array.from({ length: count }, (_, i) => i), 8, work);
    return (performance.now() - t0) / 1000;
  };
  const build = (i: number) => buildEvent({ type: 'bench.LineAdded', aggregateId: `order-${i % K}`, payload: payload(i) }, registry, options, newId);
  // PostgreSQL: a relay LISTENs on the outbox's channel while writers write (as in production), and
  // add() is timed a second time with the insert trigger that NOTIFYs it disabled. NOTIFY takes a
  // database-wide lock at commit, so this row says what the trigger costs the writers.
  const pgSchema = kind === StoreKind.postgres ? db.env.TXOUTBOX_PG_SCHEMA : undefined;
  const listener = pgSchema === undefined ? undefined : new PgClient({ connectionString: servers.pg });
  try {
    if (listener !== undefined) {
      await listener.connect();
      await listener.query(`listen "txoutbox_${pgSchema}"`);
    }
    // Warm-up (not timed): the JIT, the connection pool and the store's first-use checks.
    await mapLimit(Array.from({ length: Math.min(count, 100) }, (_, i) => -1 - i), 8, (i) => db.inTransaction((tx) => outbox.add({ type: 'bench.LineAdded', aggregateId: `order-${i}`, payload: payload(0) }, tx)));
    const add = () => timed((i) => db.inTransaction((tx) => outbox.add({ type: 'bench.LineAdded', aggregateId: `order-${i % K}`, payload: payload(i) }, tx)));
    const trigger = (on: boolean) => listener?.query(`alter table "${pgSchema}".outbox_events ${on ? 'enable' : 'disable'} trigger outbox_events_notify`);
    // Two rounds, alternating, so neither side always runs first on a colder table; the second counts.
    let added = 0;
    let inserted = 0;
    let addedQuiet = NaN;
    for (let round = 0; round < 2; round += 1) {
      added = await add();
      const built = await Promise.all(Array.from({ length: count }, (_, i) => build(i)));
      inserted = await timed((i) => db.inTransaction((tx) => db.store.insert(built[i] as OutboxEvent, tx as never)));
      if (pgSchema !== undefined) {
        await trigger(false);
        addedQuiet = await add();
        await trigger(true);
      }
    }
    const buildOnly = await timed((i) => build(i));
    const per = (seconds: number) => `${((seconds / count) * 1e6).toFixed(0)} µs per event`;
    return [
      { name: `outbox.add() in its own transaction, 8 writers (${count} events; ${per(added)})`, store: kind, eventsPerSecond: count / added },
      ...(pgSchema === undefined ? [] : [{ name: `outbox.add() with the NOTIFY trigger disabled, a measurement only: the relay needs it (${per(addedQuiet)})`, store: kind, eventsPerSecond: count / addedQuiet }]),
      { name: `the same row, built beforehand, through store.insert() alone (${per(inserted)})`, store: kind, eventsPerSecond: count / inserted },
      { name: `building the event alone: validation, canonical JSON, hash, no database (${per(buildOnly)})`, store: kind, eventsPerSecond: count / buildOnly },
    ];
  } finally {
    await listener?.end();
    await db.teardown();
  }
}

/** Resolves once a relay or worker process answers /readyz (within 120 s of its start). */
async function ready(p: ReturnType<typeof startProcess>): Promise<void> {
  const readyBy = Date.now() + 120_000;
  const port = await Promise.race([p.port, new Promise<number>((_, reject) => setTimeout(() => reject(new Error('relay/worker did not start within 120 s')), 120_000))]);
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > readyBy) throw new Error('relay/worker not ready within 120 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The stores --stores names, PostgreSQL first. */
function chosenStores(): StoreKind[] {
  return [StoreKind.postgres, StoreKind.mongodb].filter((k) => values.stores.split(',').includes(k));
}

/** The backlog a drain row writes: --backlog, and at most MONGODB_BACKLOG on SecantusDB (about ten outbox transactions a second). */
function backlogFor(store: StoreKind): number {
  return store === StoreKind.mongodb ? Math.min(BACKLOG, MONGODB_BACKLOG) : BACKLOG;
}

/**
 * A row's outbox: a topic (and task queue) named `name`, a database (MongoDB) or schema (PostgreSQL)
 * of its own on the servers the scripts started, an outbox writing to it, and the relay's and the
 * worker's settings for them.
 */
async function benchOutbox(kind: StoreKind, name: string, brokers = servers.brokers) {
  await createTopic(name, brokers);
  const db = pipelineStore(kind);
  await db.setup();
  const registry = createEventRegistry([defineEventType({ type: 'bench.LineAdded', schemaVersion: 1, aggregateType: 'order', topic: name, schema })]);
  const outbox = createOutbox({ store: db.store, registry, source: 'bench' });
  // --logs: at debug level, to read what a row did.
  const env = { ...db.env, TXOUTBOX_TASK_QUEUE: name, TXOUTBOX_LOG_LEVEL: values.logs === '' ? 'info' : 'debug', TXOUTBOX_HEALTH_PORT: '0' };
  return { topic: name, db, outbox, env };
}

async function txoutbox(variantSpec: Variant, rate: number | null): Promise<Row> {
  const name = variantSpec.name;
  const kind = variantSpec.store ?? StoreKind.mongodb;
  const variant = `${rate === null ? 'max' : 'paced'}_${variantSpec.id}_${kind}`;
  const brokers = variantSpec.env?.TXOUTBOX_KAFKA_BROKERS?.split(',') ?? servers.brokers;
  const { topic, db, outbox, env: outboxEnv } = await benchOutbox(kind, `bench-tx-${stamp}-${variant}`, brokers);
  const env = {
    ...outboxEnv,
    ...variantSpec.env,
    ...(variantSpec.fastPath ? { TXOUTBOX_FAST_PATH_TOPICS: topic } : {}),
  };
  let relay = startProcess('relay', env, 'txoutbox_relay_');
  // A relay that runs the worker itself (TXOUTBOX_RELAY_RUNS_WORKER) has no worker process beside it.
  const worker = variantSpec.env?.TXOUTBOX_RELAY_RUNS_WORKER === 'true' ? undefined : startProcess('worker', env, 'txoutbox_worker_');
  const processes = () => (worker === undefined ? [relay] : [relay, worker]);
  for (const p of processes()) await ready(p);
  await Promise.all(processes().map((p) => p.sample()));
  const base = { relay: relay.stats().cpuSeconds, worker: worker?.stats().cpuSeconds ?? 0 };
  const sampler = setInterval(() => void Promise.all(processes().map((p) => p.sample())).catch(() => undefined), 200);
  const allPublished = async (): Promise<void> => {
    const deadline = Date.now() + 30 * 60_000;
    for (;;) {
      if ((await db.unpublishedCount()) === 0) return;
      if (Date.now() > deadline) throw new Error(`${name}: not all events published within 30 minutes`);
      // Once a second: the clock stops at the last event's own publication time (below), so a
      // slower poll costs no precision and leaves the store (SecantusDB's one Python process) alone.
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };

  const committedAt = new Map<string, number>();
  let retried = 0;
  const write = async (i: number): Promise<void> => {
    // A transaction the server aborted (SecantusDB under load once answered a commit with
    // NoSuchTransaction, a TransientTransactionError the driver did not retry) is written again: a
    // write that never committed is no event, and the row counts the ones that did.
    for (let attempt = 1; ; attempt++) {
      try {
        const event = await db.inTransaction((tx) => outbox.add({ type: 'bench.LineAdded', aggregateId: `order-${i % K}`, payload: payload(i) }, tx));
        committedAt.set(event.id, Date.now());
        return;
      } catch (err) {
        const transient = (err as { hasErrorLabel?: (label: string) => boolean }).hasErrorLabel?.('TransientTransactionError') === true;
        if (!transient || attempt >= 5) throw err;
        retried += 1;
      }
    }
  };
  const count = variantSpec.backlog ?? variantSpec.events ?? N;
  if (variantSpec.backlog !== undefined) {
    // One event through the running relay (so its feed has a checkpoint), the relay stopped, the
    // backlog written, the relay started again: the clock runs from its readiness.
    await write(-1);
    await allPublished();
    relay.child.kill('SIGTERM');
    await new Promise((resolve) => relay.child.once('exit', resolve));
    await mapLimit(Array.from({ length: count }, (_, i) => i), 8, write);
    relay = startProcess('relay', env, 'txoutbox_relay_');
    await ready(relay);
    await relay.sample();
    base.relay = relay.stats().cpuSeconds;
  }
  const t0 = performance.now();
  const t0Wall = Date.now();
  if (variantSpec.backlog !== undefined) {
    // already written
  } else if (rate === null) {
    await mapLimit(Array.from({ length: count }, (_, i) => i), 8, write);
  } else {
    const intervalMs = 1000 / rate;
    const pending: Array<Promise<void>> = [];
    for (let i = 0; i < count; i++) {
      const due = t0 + i * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      pending.push(write(i));
    }
    await Promise.all(pending);
  }
  await allPublished();
  clearInterval(sampler);
  await Promise.all(processes().map((p) => p.sample()));
  const rows = await db.publishedTimes();
  // From the first write to the last publication the store recorded (same machine, same clock).
  const seconds = (Math.max(...rows.map((r) => r.publishedAt.getTime())) - t0Wall) / 1000;
  const latencies = rows.map((r) => r.publishedAt.getTime() - (committedAt.get(r.id) ?? eventIdTime(r.id))).sort((a, b) => a - b);

  // History events per event, from one event's workflow (none on the fast path: no workflow at all).
  let historyPerEvent = 0;
  if (!variantSpec.fastPath) {
    const connection = await Connection.connect({ address: variantSpec.env?.TXOUTBOX_TEMPORAL_ADDRESS ?? servers.temporal });
    const history = await new Client({ connection }).workflow.getHandle(eventWorkflowId(rows[0]?.id ?? '')).fetchHistory();
    historyPerEvent = history.events?.length ?? NaN;
    await connection.close();
  }

  for (const p of processes()) p.child.kill('SIGTERM');
  await Promise.all(processes().map((p) => new Promise((resolve) => p.child.once('exit', resolve))));
  await db.teardown();
  // A backlog's latency is its queueing: not reported.
  const backlog = variantSpec.backlog !== undefined;
  return {
    name,
    store: kind,
    eventsPerSecond: count / seconds,
    p50: backlog ? undefined : percentile(latencies, 50),
    p95: backlog ? undefined : percentile(latencies, 95),
    p99: backlog ? undefined : percentile(latencies, 99),
    relayCpuS: relay.stats().cpuSeconds - base.relay,
    workerCpuS: worker === undefined ? undefined : worker.stats().cpuSeconds - base.worker,
    relayPeakMb: relay.stats().peakRssMb,
    workerPeakMb: worker?.stats().peakRssMb,
    historyPerEvent,
    note: [rate === null ? '' : `writes paced at ${rate.toFixed(1)} events/s`, retried === 0 ? '' : `${retried} aborted write transactions written again`].filter(Boolean).join('; ') || undefined,
  };
}

function table(rows: Row[], bareTemporalRate: number, pollingRate: number): string {
  const f = (n: number | undefined, digits = 0): string => (n === undefined || Number.isNaN(n) ? '' : n.toFixed(digits));
  const lines = [
    '| mode | store | events/s | vs bare Temporal | vs polling relay | p50 ms | p95 ms | p99 ms | relay CPU s | worker CPU s | relay peak MB | worker peak MB | history events/event |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.name}${r.note ? ` (${r.note})` : ''} | ${r.store ?? ''} | ${f(r.eventsPerSecond, 1)} | ${f(r.eventsPerSecond / bareTemporalRate, 2)} | ${f(r.eventsPerSecond / pollingRate, 2)} | ${f(r.p50)} | ${f(r.p95)} | ${f(r.p99)} | ${f(r.relayCpuS, 1)} | ${f(r.workerCpuS, 1)} | ${f(r.relayPeakMb)} | ${f(r.workerPeakMb)} | ${f(r.historyPerEvent)} |`,
    );
  }
  return lines.join('\n');
}

/**
 * The plain polling relay's rows: end to end with writers in one transaction per event (the shape of
 * an outbox writer's, and the "vs polling relay" divisor) and autocommitted, both with the fast
 * path's PostgreSQL event count; then draining a backlog.
 */
async function pollingBaselines(pool: Pool): Promise<{ rows: Row[]; divisor: number }> {
  log(`plain polling relay, ${FAST_N} events, one write transaction per event`);
  const like = await pollingRelay(pool, null, true, FAST_N);
  log(`plain polling relay, ${FAST_N} events, autocommitted inserts`);
  const autocommit = await pollingRelay(pool, null, false, FAST_N);
  log(`plain polling relay draining a backlog of ${BACKLOG}`);
  const drain = await pollingRelay(pool, BACKLOG);
  return { rows: [like, autocommit, drain], divisor: like.eventsPerSecond };
}

/** The polling relay's drain again, at the end of a run: how much the shared machine drifted. */
async function pollingDrainAgain(pool: Pool): Promise<Row> {
  log(`plain polling relay draining a backlog of ${BACKLOG} again (drift check)`);
  const row = await pollingRelay(pool, BACKLOG);
  return { ...row, name: `${row.name} (again, at the end: drift)` };
}

/**
 * Partitioned relays draining a backlog on the fast path (issue 17): `relays` relay processes share
 * the outbox's 16 partitions by leases. Once they hold an even share each, they are frozen
 * (SIGSTOP; their leases, 60 s, outlast the writing), the backlog is written, and they are thawed
 * together: the clock runs from the thaw to the last event published.
 */
async function partitionedDrain(kind: StoreKind, relays: number, backlog: number): Promise<Row> {
  const { topic, db, outbox, env: outboxEnv } = await benchOutbox(kind, `bench-relays-${stamp}-${kind}-${relays}`);
  const env = {
    ...outboxEnv,
    TXOUTBOX_FAST_PATH_TOPICS: topic,
    TXOUTBOX_RELAY_PARTITIONED: 'true',
    TXOUTBOX_RELAY_LEASE_MS: '60000',
  };
  const processes = Array.from({ length: relays }, (_, i) => startProcess('relay', { ...env, TXOUTBOX_RELAY_MEMBER: `relay-${i + 1}` }, 'txoutbox_relay_'));
  try {
    for (const p of processes) await ready(p);
    await waitFor(
      async () => {
        const owners = (await db.store.partitionStatus('relay')).map((s) => s.owner);
        const shares = Array.from({ length: relays }, (_, i) => owners.filter((o) => o === `relay-${i + 1}`).length);
        return owners.every((o) => o !== null) && Math.max(...shares) - Math.min(...shares) <= 1;
      },
      { timeoutMs: 120_000, intervalMs: 250, what: `${relays} relays sharing the partitions` },
    );
    await Promise.all(processes.map((p) => p.sample()));
    const base = processes.map((p) => p.stats().cpuSeconds);
    for (const p of processes) p.child.kill('SIGSTOP');
    await mapLimit(Array.from({ length: backlog }, (_, i) => i), 8, (i) => db.inTransaction((tx) => outbox.add({ type: 'bench.LineAdded', aggregateId: `order-${i % K}-${i % 97}`, payload: payload(i) }, tx)));
    const t0 = Date.now();
    for (const p of processes) p.child.kill('SIGCONT');
    const deadline = Date.now() + 30 * 60_000;
    while ((await db.unpublishedCount()) > 0) {
      if (Date.now() > deadline) throw new Error(`${relays} partitioned relays: not drained within 30 minutes`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    // Drained: the store says every event is published (polled every 250 ms). The rate is by the last
    // publishedAt, the relay's time of Kafka's acknowledgement; the note gives the time to the mark.
    const markedMs = Date.now() - t0;
    const last = Math.max(...(await db.publishedTimes()).map((r) => r.publishedAt.getTime()));
    await Promise.all(processes.map((p) => p.sample()));
    return {
      name: `txoutbox fast path, ${relays} partitioned relay${relays === 1 ? '' : 's'} (16 partitions) draining a backlog of ${backlog}`,
      store: kind,
      eventsPerSecond: backlog / ((last - t0) / 1000),
      relayCpuS: processes.reduce((sum, p, i) => sum + p.stats().cpuSeconds - (base[i] ?? 0), 0),
      relayPeakMb: Math.max(...processes.map((p) => p.stats().peakRssMb)),
      note: [relays === 1 ? '' : `relay CPU summed over the ${relays}`, `all marked published ${(markedMs / 1000).toFixed(1)} s after the thaw`].filter(Boolean).join('; '),
    };
  } finally {
    for (const p of processes) {
      p.child.kill('SIGCONT');
      p.child.kill('SIGTERM');
    }
    await Promise.all(processes.map((p) => new Promise((resolve) => (p.child.exitCode === null ? p.child.once('exit', resolve) : resolve(null)))));
    await db.teardown();
  }
}

/** Issue 17: 1, 2 and 4 partitioned relays draining the same backlog, then 1 again (drift), on each store. */
async function partitionedDrains(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const store of chosenStores()) {
    const backlog = backlogFor(store);
    for (const [i, n] of [1, 2, 4, 1].entries()) {
      log(`${store}: ${n} partitioned relay(s) draining a backlog of ${backlog}`);
      const row = await partitionedDrain(store, n, backlog);
      rows.push(i === 3 ? { ...row, name: `${row.name} (again: drift)` } : row);
    }
  }
  return rows;
}

/**
 * The fast path's rows on one store: writes as fast as possible, at half that rate, and draining a
 * backlog written while the relay was stopped, once per feed batch size (set explicitly: the
 * default depends on the fast path being on).
 */
async function fastPathRows(store: StoreKind): Promise<Row[]> {
  // SecantusDB writes about ten outbox transactions a second: --events there, not --fast-events.
  const events = store === StoreKind.postgres ? FAST_N : N;
  const fastSpec: Variant = { id: 'fast', name: `txoutbox fast path (relay publishes, workflows only on failure), ${events} events written as fast as possible (8 writers)`, fastPath: true, store, events };
  log(`${store}: ${fastSpec.name}`);
  const max = await txoutbox(fastSpec, null);
  log(`${store}: txoutbox fast path at half its maximum rate (${(max.eventsPerSecond / 2).toFixed(1)} events/s)`);
  const rows = [max, await txoutbox({ ...fastSpec, name: 'txoutbox fast path, at half its maximum rate' }, max.eventsPerSecond / 2)];
  // SecantusDB's backlog is smaller, and its row says so.
  const backlog = backlogFor(store);
  for (const batch of ['100', '500']) {
    log(`${store}: the fast path draining a backlog of ${backlog}, feed batches of ${batch}`);
    rows.push(
      await txoutbox(
        { id: `fast_backlog${batch}`, name: `txoutbox fast path, draining a backlog of ${backlog} written while the relay was stopped, feed batches of ${batch}`, fastPath: true, backlog, env: { TXOUTBOX_RELAY_BATCH_SIZE: batch }, store },
        null,
      ),
    );
  }
  return rows;
}

/**
 * --kafka-cluster BROKERS: the default mode and the fast path on PostgreSQL, each on the single broker
 * and then on the cluster, so each pair ran minutes apart on the same servers.
 */
async function clusterRows(cluster: string): Promise<Row[]> {
  const rows: Row[] = [];
  const modes: Variant[] = [
    { id: 'default', name: `txoutbox default mode, ${N} events written as fast as possible (8 writers)`, store: StoreKind.postgres },
    { id: 'fast', name: `txoutbox fast path, ${FAST_N} events written as fast as possible (8 writers)`, fastPath: true, store: StoreKind.postgres, events: FAST_N },
  ];
  for (const mode of modes) {
    for (const [where, brokers] of [['the single broker', servers.brokers.join(',')], ['the three-broker cluster', cluster]] as const) {
      const spec: Variant = { ...mode, id: `${mode.id}_${brokers === cluster ? 'cluster' : 'single'}`, name: `${mode.name}, on ${where}`, env: { TXOUTBOX_KAFKA_BROKERS: brokers } };
      log(spec.name);
      rows.push(await txoutbox(spec, null));
    }
  }
  return rows;
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const pool = new Pool({ connectionString: servers.pg, max: 20 });
  log(`${N} events over ${K} keys`);
  const rows: Row[] = [];
  // --only engines,writes: those sections alone, next to the bare-Temporal baseline.
  const only = new Set(values.only.split(',').filter(Boolean));
  const section = (name: 'engines' | 'writes'): boolean => only.has(name) || values[name];
  const steps = values.steps === '' ? TUNING : TUNING.filter((v) => values.steps.split(',').includes(v.id));
  if (only.size === 0) {
    log('raw kafkajs');
    rows.push(await rawKafka(true));
    rows.push(await rawKafka(false));
  }
  log('bare Temporal');
  const bare = await bareTemporal();
  rows.push(bare);
  if (section('engines')) {
    // Each engine setting twice, alternating, on fresh servers: the spread shows the noise.
    for (const round of [1, 2]) {
      for (const [i, engine] of ENGINES.entries()) {
        log(`bare Temporal on a ${engine.name}, round ${round}`);
        rows.push(await bareTemporalOn(engine, 17_233 + i));
      }
    }
  }
  if (section('writes')) {
    for (const store of [StoreKind.mongodb, StoreKind.postgres]) {
      log(`${store}: what one write costs`);
      rows.push(...(await writeCost(store)));
    }
  }
  if (values.temporal !== '') {
    // --temporal NAME=host:port,...: bare Temporal and the default mode (PostgreSQL store), at the
    // maximum and at half of it, on each engine named, in this one run.
    for (const spec of values.temporal.split(',')) {
      const [engine, address] = [spec.slice(0, spec.lastIndexOf('=')), spec.slice(spec.lastIndexOf('=') + 1)];
      if (!engine || !address) throw new Error(`--temporal wants NAME=host:port, got ${spec}`);
      log(`${engine}: bare Temporal`);
      rows.push(await bareTemporal(address, `bare Temporal on ${engine}`));
      const onEngine: Variant = { id: `engine_${engine.replace(/\W/g, '_')}`, name: `txoutbox default mode on ${engine}, as fast as possible`, store: StoreKind.postgres, env: { TXOUTBOX_TEMPORAL_ADDRESS: address } };
      log(`${engine}: ${onEngine.name}`);
      const max = await txoutbox(onEngine, null);
      rows.push(max);
      log(`${engine}: the default mode at half that rate`);
      rows.push(await txoutbox({ ...onEngine, name: `txoutbox default mode on ${engine}, at half the maximum rate` }, max.eventsPerSecond / 2));
    }
  }
  if (only.has('fast')) {
    // The fast path next to the plain polling relay, end to end and draining, in this one run.
    const polling = await pollingBaselines(pool);
    const fastRows: Row[] = [];
    for (const store of chosenStores()) fastRows.push(...(await fastPathRows(store)));
    const drainAgain = await pollingDrainAgain(pool);
    console.log(table([...rows, ...polling.rows, ...fastRows, drainAgain], bare.eventsPerSecond, polling.divisor));
    await pool.end();
    return;
  }
  if (values['kafka-cluster'] !== '') rows.push(...(await clusterRows(values['kafka-cluster'])));
  if (only.has('relays')) rows.push(...(await partitionedDrains()));
  if (only.has('steps')) {
    // The PostgreSQL default mode as the baseline, then the chosen steps, then the baseline again.
    for (const v of [{ id: 'default', name: 'txoutbox default mode, writes as fast as possible (8 writers)' }, ...steps, { id: 'default_again', name: 'txoutbox default mode again (drift check)' }]) {
      log(v.name);
      rows.push(await txoutbox({ ...v, store: StoreKind.postgres }, null));
    }
  }
  if (only.size > 0) {
    console.log(table(rows, bare.eventsPerSecond, NaN));
    await pool.end();
    return;
  }
  const polling = await pollingBaselines(pool);
  rows.push(...polling.rows);
  // The core rows on each store: MongoDB (the default store) then PostgreSQL.
  for (const store of [StoreKind.mongodb, StoreKind.postgres]) {
    // SecantusDB runs the default mode at a few events a second: --events up to 300 there.
    const events = store === StoreKind.mongodb ? Math.min(N, 300) : N;
    const defaults: Variant = { id: 'default', name: `txoutbox default mode, ${events} events written as fast as possible (8 writers)`, store, events };
    log(`${store}: ${defaults.name}`);
    const max = await txoutbox(defaults, null);
    rows.push(max);
    log(`${store}: txoutbox at half the maximum rate (${(max.eventsPerSecond / 2).toFixed(1)} events/s)`);
    rows.push(await txoutbox({ ...defaults, name: 'txoutbox default mode, at half the maximum rate' }, max.eventsPerSecond / 2));
    rows.push(...(await fastPathRows(store)));
  }
  // Issue 17: the fast path draining with 1, 2 and 4 partitioned relays.
  rows.push(...(await partitionedDrains()));
  rows.push(await pollingDrainAgain(pool));
  if (!values.quick) {
    // The tuning steps change the relay's or the worker's Temporal settings, not the store: measured
    // on PostgreSQL, where the store is not the bottleneck (see the MongoDB rows above).
    for (const v of steps) {
      log(v.name);
      rows.push(await txoutbox({ ...v, store: StoreKind.postgres }, null));
    }
    log('txoutbox default mode again (drift of the shared server over the run)');
    rows.push(await txoutbox({ id: 'default_again', name: 'txoutbox default mode again, at the end of the run (drift check)', store: StoreKind.postgres }, null));
  }
  await pool.end();

  const versions = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  const report = [
    `Run ${new Date().toISOString()}`,
    '',
    `Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform}; Node ${process.version};`,
    `Command: \`npx tsx scripts/bench.ts ${process.argv.slice(2).join(' ')}\``,
    `Temporal CLI dev server 1.5.1 (server 1.29.1, SQLite in WAL mode) unless a row names another engine; Kafka 4.4.0 (one KRaft broker); PostgreSQL 15; MongoDB: SecantusDB 0.7.0b3 (a Python server speaking MongoDB's protocol, one-member replica set; its own docs put it 4–17× slower than mongod per operation);`,
    `kafkajs ${versions.devDependencies.kafkajs}, @temporalio/* ${versions.devDependencies['@temporalio/client']}. All servers and the benchmark share the one machine.`,
    '',
    table(rows, bare.eventsPerSecond, polling.divisor),
    '',
    'Latency: from the write transaction\'s commit to Kafka\'s acknowledgement (recorded on the event). CPU and memory: the relay and worker processes\' own `process_cpu_seconds_total` and peak `process_resident_memory_bytes`, sampled every 200 ms.',
  ].join('\n');
  console.log(report);
  if (values.out) writeFileSync(values.out, report + '\n');
}

main().catch((err: unknown) => {
  console.error(err);
  // A row that failed leaves its relay and worker running (a crashed run once left two busy for
  // half an hour, skewing what ran next): they go with it.
  for (const child of children) child.kill('SIGKILL');
  process.exit(1);
});
