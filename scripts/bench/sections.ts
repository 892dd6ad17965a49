/** The benchmark's sections beyond the core rows: polling baselines, partitioned drains, the fast path, the Kafka cluster, and the table they print. */
import { Partitioners } from 'kafkajs';
import { Pool } from 'pg';
import { toKafkaMessage } from '../../domain/outbox';
import { toEvent, type EventRow } from '../../domain/stores/postgres/context';
import { StoreKind } from '../../test/support/pipeline-store';
import { waitFor } from '../../test/support/servers';
import { mapLimit } from '../../workers/relay/relay';
import { plainOutbox, pollingLoop, pollingRelay } from './baselines';
import { benchOutbox, txoutbox } from './outbox-rows';
import { formatCpu, machineCpu } from './machine-cpu';
import { ready, startProcess, stopProcesses } from './processes';
import { BACKLOG, FAST_N, K, N, type Row, type Variant, backlogFor, chosenStores, kafka, log, payload, percentile, servers, stamp } from './settings';

export function table(rows: Row[], bareTemporalRate: number, pollingRate: number): string {
  const f = (n: number | undefined, digits = 0): string => (n === undefined || Number.isNaN(n) ? '' : n.toFixed(digits));
  const lines = [
    '| mode | store | events/s | vs bare Temporal | vs polling relay | p50 ms | p95 ms | p99 ms | relay CPU s | worker CPU s | relay peak MB | worker peak MB | history events/event | store round trips/event | Temporal RPCs/event |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.name}${r.note ? ` (${r.note})` : ''} | ${r.store ?? ''} | ${f(r.eventsPerSecond, 1)} | ${f(r.eventsPerSecond / bareTemporalRate, 2)} | ${f(r.eventsPerSecond / pollingRate, 2)} | ${f(r.p50)} | ${f(r.p95)} | ${f(r.p99)} | ${f(r.relayCpuS, 1)} | ${f(r.workerCpuS, 1)} | ${f(r.relayPeakMb)} | ${f(r.workerPeakMb)} | ${f(r.historyPerEvent)} | ${f(r.storeTripsPerEvent, 1)} | ${f(r.temporalRpcsPerEvent, 1)} |`,
    );
  }
  return lines.join('\n');
}

/** The plain polling relay's rows, by what each is compared with. */
export interface PollingBaselines {
  /** Every row, in the table's order. */
  rows: Row[];
  /** End to end, writes in one transaction per event: the "vs polling relay" divisor. */
  divisor: number;
  /** Draining a backlog written before it started. */
  drain: Row;
  /** End to end over txoutbox's own table, the writes through outbox.add(). */
  overOutbox: Row;
}

/**
 * The plain polling relay's rows: end to end with writers in one transaction per event (the shape of
 * an outbox writer's, and the "vs polling relay" divisor) and autocommitted, both with the fast
 * path's PostgreSQL event count; then draining a backlog; then end to end over txoutbox's own table,
 * its writers through outbox.add() as the fast path's are.
 */
export async function pollingBaselines(pool: Pool): Promise<PollingBaselines> {
  log(`plain polling relay, ${FAST_N} events, one write transaction per event`);
  const like = await pollingRelay(pool, null, true, FAST_N);
  log(`plain polling relay, ${FAST_N} events, autocommitted inserts`);
  const autocommit = await pollingRelay(pool, null, false, FAST_N);
  log(`plain polling relay draining a backlog of ${BACKLOG}`);
  const drain = await pollingRelay(pool, BACKLOG);
  log(`plain polling relay over txoutbox's table, ${FAST_N} events written through outbox.add()`);
  const overOutbox = await pollingRelayOverOutbox(pool, FAST_N);
  return { rows: [like, autocommit, drain, overOutbox], divisor: like.eventsPerSecond, drain, overOutbox };
}

/**
 * The plain polling relay over txoutbox's own table (PostgreSQL), end to end, its 8 writers through
 * outbox.add() in one transaction per event, exactly as the fast path's rows write: the two relays
 * compared on the same writes. (The plain relay's own rows write a bare INSERT, about half the CPU
 * of an add(), which validates, hashes and indexes the event; where the machine is shared, the
 * end-to-end rate is the writers'.) It selects pending events by id, 100 at a time, FOR UPDATE SKIP
 * LOCKED, sends them, and sets them published, in one transaction; no claims, no feed, no ordering.
 */
export async function pollingRelayOverOutbox(pool: Pool, events: number): Promise<Row> {
  const { topic, db, write } = await benchOutbox(StoreKind.postgres, `bench-pollo-${stamp}`);
  const table = `"${(db.env as Record<string, string>).TXOUTBOX_PG_SCHEMA}".outbox_events`;
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const relay = pollingLoop(pool, async (client) => {
    const { rows } = await client.query<EventRow>(`select * from ${table} where status = 'pending' order by id limit 100 for update skip locked`);
    if (rows.length === 0) return 0;
    await producer.send({ topic, acks: -1, messages: rows.map((row) => toKafkaMessage(toEvent(row))) });
    await client.query(`update ${table} set status = 'published', published_at = clock_timestamp() where id = any($1::uuid[])`, [rows.map((r) => r.id)]);
    return rows.length;
  });
  const committedAt = new Map<string, number>();
  const cpuMeter = machineCpu();
  const t0Wall = Date.now();
  await mapLimit(Array.from({ length: events }, (_, i) => i), 8, async (i) => {
    const event = await write(i);
    committedAt.set(event.id, Date.now());
  });
  await waitFor(async () => (await db.unpublishedCount()) === 0, { timeoutMs: 10 * 60_000, intervalMs: 100, what: 'the polling relay over the outbox table publishing every event' });
  log(`the plain polling relay over txoutbox's table: CPU per event by process, from /proc (the relay runs in the bench's process): ${formatCpu(cpuMeter.stop(), events)}`);
  await relay.stop();
  await producer.disconnect();
  const published = await db.publishedTimes();
  await db.teardown();
  // As the txoutbox rows: from the first write to the last publication the store recorded.
  const seconds = (Math.max(...published.map((r) => r.publishedAt.getTime())) - t0Wall) / 1000;
  const latencies = published.map((r) => r.publishedAt.getTime() - (committedAt.get(r.id) ?? t0Wall)).sort((a, b) => a - b);
  return {
    name: `plain polling relay over txoutbox's table, batches of 100, ${events} events written through outbox.add() (8 writers)`,
    store: StoreKind.postgres,
    eventsPerSecond: events / seconds,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
  };
}

/**
 * The writers alone, on PostgreSQL, with no relay reading what they write (so no feed waits and no
 * write NOTIFYs), 8 at a time, each write in its own transaction: `events` outbox.add() calls (the
 * most any relay fed by these writes can reach end to end on this machine, where the writers and the
 * relay share it), and the plain polling relay's writes (a bare INSERT of a message built before the
 * clock starts, into its plain table). Each logs the CPU per event each process spent.
 */
export async function writersAlone(pool: Pool, events: number): Promise<{ add: Row; plain: Row }> {
  const { db, write } = await benchOutbox(StoreKind.postgres, `bench-writers-${stamp}`);
  // Warm-up, not timed: the JIT, the pool, the store's first-use checks.
  await mapLimit(Array.from({ length: 100 }, (_, i) => -1 - i), 8, (i) => write(i));
  const add = await timedWrites(`the writers alone: ${events} events through outbox.add() (8 writers), no relay running`, events, () => mapLimit(Array.from({ length: events }, (_, i) => i), 8, (i) => write(i)));
  await db.teardown();
  const plain = await plainOutbox(pool, '_writers', `bench-writers-plain-${stamp}`, events);
  const plainRow = await timedWrites(`the plain polling relay's writers alone: ${events} bare INSERTs, one transaction each (8 writers), no relay running`, events, () => plain.writeAll(true));
  await plain.drop();
  return { add, plain: plainRow };
}

async function timedWrites(name: string, events: number, writeAll: () => Promise<unknown>): Promise<Row> {
  const cpuMeter = machineCpu();
  const t0 = performance.now();
  await writeAll();
  const seconds = (performance.now() - t0) / 1000;
  log(`${name}: CPU per event by process, from /proc: ${formatCpu(cpuMeter.stop(), events)}`);
  return { name, store: StoreKind.postgres, eventsPerSecond: events / seconds };
}

/** The polling relay's drain again, at the end of a run: how much the shared machine drifted. */
export async function pollingDrainAgain(pool: Pool): Promise<Row> {
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
export async function partitionedDrain(kind: StoreKind, relays: number, backlog: number): Promise<Row> {
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
    const baseTrips = processes.map((p) => p.stats().storeTrips);
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
      storeTripsPerEvent: processes.reduce((sum, p, i) => sum + p.stats().storeTrips - (baseTrips[i] ?? 0), 0) / backlog,
      note: [relays === 1 ? '' : `relay CPU summed over the ${relays}`, `all marked published ${(markedMs / 1000).toFixed(1)} s after the thaw`].filter(Boolean).join('; '),
    };
  } finally {
    // A relay still frozen by the row goes on first, so that it can stop.
    for (const p of processes) p.child.kill('SIGCONT');
    await stopProcesses(processes);
    await db.teardown();
  }
}

/** Issue 17: 1, 2 and 4 partitioned relays draining the same backlog, then 1 again (drift), on each store. */
export async function partitionedDrains(): Promise<Row[]> {
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
export async function fastPathRows(store: StoreKind): Promise<Row[]> {
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
export async function clusterRows(cluster: string): Promise<Row[]> {
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

/** How long --only idle watches each pair of idle processes. */
const IDLE_SECONDS = 10;

/**
 * --only idle: what a relay and a worker cost doing nothing. For each store, in the default mode and
 * on the fast path: both processes started, one event through the pipeline (so every client has
 * connected and had its first answer), then the CPU each group of processes on the machine spent over
 * IDLE_SECONDS, from /proc (the rows' relay and worker CPU columns, in seconds; the log line has every group).
 */
export async function idleRows(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const store of chosenStores()) {
    for (const fastPath of [false, true]) {
      const { topic, db, env: outboxEnv, write } = await benchOutbox(store, `bench-idle-${stamp}-${store}-${fastPath ? 'fast' : 'default'}`);
      const env = { ...outboxEnv, ...(fastPath ? { TXOUTBOX_FAST_PATH_TOPICS: topic } : {}) };
      const processes = [startProcess('relay', env, 'txoutbox_relay_'), startProcess('worker', env, 'txoutbox_worker_')];
      try {
        for (const p of processes) await ready(p);
        await write(0);
        await waitFor(async () => (await db.unpublishedCount()) === 0, { timeoutMs: 60_000, intervalMs: 100, what: 'the idle row\'s one event published' });
        const meter = machineCpu();
        await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
        const by = meter.stop();
        const name = `idle for ${IDLE_SECONDS} s after one event, ${fastPath ? 'fast path' : 'default mode'}`;
        log(`${store}: ${name}: CPU ms per second: ${Object.entries(by).filter(([, s]) => s > 0).map(([group, s]) => `${group} ${((s / IDLE_SECONDS) * 1000).toFixed(1)}`).join(', ')}`);
        const of = (group: string): number => (by[`${group} user`] ?? 0) + (by[`${group} sys`] ?? 0);
        rows.push({ name, store, eventsPerSecond: NaN, relayCpuS: of('relay'), workerCpuS: of('worker') });
      } finally {
        await stopProcesses(processes);
        await db.teardown();
      }
    }
  }
  return rows;
}
