/** The baselines each txoutbox row is compared with, measured in the same run: raw kafkajs, bare Temporal (on the running server and on fresh dev servers), a plain polling relay. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { Partitioners } from 'kafkajs';
import { Pool, type PoolClient } from 'pg';
import { toKafkaMessage } from '../../domain/outbox';
import { withPgTransaction } from '../../domain/stores/postgres';
import { waitFor } from '../../test/support/servers';
import { mapLimit } from '../../workers/relay/relay';
import { formatCpu, machineCpu } from './machine-cpu';
import { N, type Row, createTopic, kafka, log, percentile, sampleEvents, servers, stamp, temporalRpcs } from './settings';

export async function rawKafka(batched: boolean): Promise<Row> {
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

export async function bareTemporal(address = servers.temporal, name = 'bare Temporal: one workflow + one no-op activity each'): Promise<Row> {
  const taskQueue = `bench-bare-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowsPath: require.resolve('./noop-workflow'),
    activities: { noop: async () => undefined },
  });
  const clientConnection = await Connection.connect({ address });
  const client = new Client({ connection: clientConnection });
  const rpcsBefore = await temporalRpcs(address);
  // Its worker runs in this process, beside the client that starts the workflows: the CPU of both.
  const cpuBefore = process.cpuUsage();
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
  const cpu = process.cpuUsage(cpuBefore);
  const rpcs = (await temporalRpcs(address)) - rpcsBefore;
  await clientConnection.close();
  await connection.close();
  return { name, eventsPerSecond: N / seconds, workerCpuS: (cpu.user + cpu.system) / 1e6, temporalRpcsPerEvent: rpcs / N };
}

/** The dev server's settings measured side by side (--engines), each on a fresh server of its own. */
export const ENGINES: Array<{ name: string; args: string[] }> = [
  { name: 'dev server, SQLite default pragmas (fresh database)', args: [] },
  { name: 'dev server, SQLite journal_mode=wal, synchronous=off (fresh database)', args: ['--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=off'] },
];

/** The Temporal CLI the scripts built (scripts/infra.sh keeps it in the cache). */
export function temporalCli(): string {
  const cache = process.env.TXOUTBOX_CACHE ?? join(homedir(), '.cache', 'txoutbox');
  const dir = readdirSync(cache).find((d) => d.startsWith('temporal-cli-'));
  if (dir === undefined) throw new Error(`no Temporal CLI in ${cache}: run scripts/infra.sh up first`);
  return join(cache, dir, 'temporal');
}

/** Bare Temporal on a fresh dev server started with `args`, then stopped. */
export async function bareTemporalOn(engine: { name: string; args: string[] }, port: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'txoutbox-bench-engine-'));
  const child = spawn(temporalCli(), ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port), '--metrics-port', String(port + 9), '--db-filename', join(dir, 'temporal.db'), '--log-level', 'error', ...engine.args], {
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
 * A plain outbox table (bigserial id, the message's key, value and headers, a published flag) in a
 * schema of its own, and its writes: each message a bare INSERT, autocommitted or in its own
 * BEGIN/INSERT/COMMIT (`transactional`), 8 at a time. The messages are built before the clock starts.
 */
export async function plainOutbox(pool: Pool, suffix: string, topic: string, count: number) {
  const pgSchema = `bench_${stamp}${suffix}`;
  const table = `"${pgSchema}".poll_outbox`;
  await pool.query(`create schema if not exists "${pgSchema}"`);
  await pool.query(`create table ${table} (id bigserial primary key, key text, value text, headers jsonb, published boolean not null default false, created_at timestamptz default clock_timestamp(), published_at timestamptz)`);
  const messages = (await sampleEvents(topic, count)).map(toKafkaMessage);
  const insert = (client: Pick<Pool, 'query'>, m: (typeof messages)[number]) => client.query(`insert into ${table} (key, value, headers) values ($1, $2, $3)`, [m.key, m.value, JSON.stringify(m.headers)]);
  return {
    table,
    writeAll: (transactional: boolean) => mapLimit(messages, 8, (m) => (transactional ? withPgTransaction(pool, ({ client }) => insert(client, m)) : insert(pool, m))),
    drop: () => pool.query(`drop schema "${pgSchema}" cascade`),
  };
}

/**
 * The plain polling relay. `transactional`: each write is its own BEGIN/INSERT/COMMIT, the shape of
 * an outbox writer's (txoutbox's rows write that way); otherwise one autocommitted INSERT each.
 */
export async function pollingRelay(pool: Pool, backlog: number | null = null, transactional = false, events = N): Promise<Row> {
  const count = backlog ?? events;
  const topic = `bench-poll-${stamp}${backlog === null ? '' : '-backlog'}`;
  const name =
    backlog !== null
      ? `plain polling relay, draining a backlog of ${count} written before it started`
      : `plain polling relay (no Temporal), batches of 100, ${count} events, ${transactional ? 'one write transaction per event (BEGIN, INSERT, COMMIT)' : 'autocommitted INSERTs'}`;
  await createTopic(topic);
  const { table, writeAll, drop } = await plainOutbox(pool, backlog === null ? '' : '_backlog', topic, count);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  if (backlog !== null) await writeAll(transactional); // written before the relay runs: its drain rate alone
  const cpuMeter = machineCpu();
  const t0 = performance.now();
  const relay = pollingLoop(pool, async (client) => {
    const { rows } = await client.query<{ id: string; key: string; value: string; headers: Record<string, string> }>(
      `select id, key, value, headers from ${table} where not published order by id limit 100 for update skip locked`,
    );
    if (rows.length === 0) return 0;
    await producer.send({ topic, acks: -1, messages: rows.map((r) => ({ key: r.key, value: r.value, headers: r.headers })) });
    await client.query(`update ${table} set published = true, published_at = clock_timestamp() where id = any($1::bigint[])`, [rows.map((r) => r.id)]);
    return rows.length;
  });
  if (backlog === null) await writeAll(transactional);
  for (;;) {
    const { rows } = await pool.query<{ n: string }>(`select count(*)::text as n from ${table} where not published`);
    if (rows[0]?.n === '0') break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const seconds = (performance.now() - t0) / 1000;
  log(`${name}: CPU per event by process, from /proc (the relay, and the writers while they write, run in the bench's process): ${formatCpu(cpuMeter.stop(), count)}`);
  const { rows } = await pool.query<{ ms: string }>(`select extract(epoch from (published_at - created_at)) * 1000 as ms from ${table} order by 1`);
  const latencies = rows.map((r) => Number(r.ms));
  await relay.stop();
  await producer.disconnect();
  await drop();
  return {
    name,
    eventsPerSecond: count / seconds,
    // A backlog's latency is its queueing: not reported.
    p50: backlog === null ? percentile(latencies, 50) : undefined,
    p95: backlog === null ? percentile(latencies, 95) : undefined,
    p99: backlog === null ? percentile(latencies, 99) : undefined,
  };
}

/**
 * A plain polling relay's loop: `batch` runs in one transaction (select FOR UPDATE SKIP LOCKED, send,
 * mark) and returns how many it sent; none sent, the loop waits 20 ms. Runs until `stop()`.
 */
export function pollingLoop(pool: Pool, batch: (client: PoolClient) => Promise<number>): { stop: () => Promise<void> } {
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const sent = await withPgTransaction(pool, ({ client }) => batch(client));
      if (sent === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}
