/** The txoutbox rows: one outbox (topic, store, relay and worker) measured end to end, at the maximum or a paced rate, or draining a backlog; and what one write costs. */
import { Client, Connection } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { applyOutboxDefaults, buildEvent, createEventIdGenerator, createEventRegistry, createOutbox, defineEventType, eventIdTime, type OutboxEvent } from '../../domain/outbox';
import { PostgresOutboxStore } from '../../domain/stores/postgres';
import { holdWaitLock, stopWaiting } from '../../domain/stores/postgres/feed-wait';
import { pipelineStore, StoreKind } from '../../test/support/pipeline-store';
import { mapLimit } from '../../workers/relay/relay';
import { eventWorkflowId } from '../../workers/relay/start-event-workflow';
import { ready, startProcess, stopProcesses } from './processes';
import { formatCpu, machineCpu } from './machine-cpu';
import { FAST_PATH_WARM_UP, K, N, type Row, type Variant, createTopic, log, payload, percentile, schema, servers, stamp, temporalRpcs, values } from './settings';

export async function writeCost(kind: StoreKind): Promise<Row[]> {
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
  // add() is timed a second time while that relay's feed waits (it holds the wait lock, see
  // feed-wait.ts): then every write NOTIFYs, as every write did before. NOTIFY takes a database-wide
  // lock at commit, so this row says what notifying costs the writers.
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
    const feedWaits = (on: boolean) => db.store instanceof PostgresOutboxStore && listener !== undefined && (on ? holdWaitLock : stopWaiting)(db.store, listener);
    // Two rounds, alternating, so neither side always runs first on a colder table; the second counts.
    let added = 0;
    let inserted = 0;
    let addedNotifying = NaN;
    for (let round = 0; round < 2; round += 1) {
      added = await add();
      const built = await Promise.all(Array.from({ length: count }, (_, i) => build(i)));
      inserted = await timed((i) => db.inTransaction((tx) => db.store.insert(built[i] as OutboxEvent, tx as never)));
      if (pgSchema !== undefined) {
        await feedWaits(true);
        addedNotifying = await add();
        await feedWaits(false);
      }
    }
    const buildOnly = await timed((i) => build(i));
    const per = (seconds: number) => `${((seconds / count) * 1e6).toFixed(0)} µs per event`;
    return [
      { name: `outbox.add() in its own transaction, 8 writers, no feed waiting (${count} events; ${per(added)})`, store: kind, eventsPerSecond: count / added },
      ...(pgSchema === undefined ? [] : [{ name: `outbox.add() while a feed waits: every write NOTIFYs, as every write did before (${per(addedNotifying)})`, store: kind, eventsPerSecond: count / addedNotifying }]),
      { name: `the same row, built beforehand, through store.insert() alone (${per(inserted)})`, store: kind, eventsPerSecond: count / inserted },
      { name: `building the event alone: validation, canonical JSON, hash, no database (${per(buildOnly)})`, store: kind, eventsPerSecond: count / buildOnly },
    ];
  } finally {
    await listener?.end();
    await db.teardown();
  }
}

export async function benchOutbox(kind: StoreKind, name: string, brokers = servers.brokers, ordered = false) {
  await createTopic(name, brokers);
  const db = pipelineStore(kind);
  await db.setup();
  const registry = createEventRegistry([defineEventType({ type: 'bench.LineAdded', schemaVersion: 1, aggregateType: 'order', topic: name, schema, ordering: ordered ? 'per-key' : 'none' })]);
  const outbox = createOutbox({ store: db.store, registry, source: 'bench' });
  // --logs: at debug level, to read what a row did.
  const env = { ...db.env, TXOUTBOX_TASK_QUEUE: name, TXOUTBOX_LOG_LEVEL: values.logs === '' ? 'info' : 'debug', TXOUTBOX_HEALTH_PORT: '0' };
  /** Writes event `i` in its own transaction, on one of `keys` aggregates. */
  const write = (i: number, keys = K) => db.inTransaction((tx) => outbox.add({ type: 'bench.LineAdded', aggregateId: `order-${i % keys}`, payload: payload(i) }, tx));
  return { topic: name, db, outbox, env, write };
}

export async function txoutbox(variantSpec: Variant, rate: number | null): Promise<Row> {
  const name = variantSpec.name;
  const kind = variantSpec.store ?? StoreKind.mongodb;
  const variant = `${rate === null ? 'max' : 'paced'}_${variantSpec.id}_${kind}`;
  const brokers = variantSpec.env?.TXOUTBOX_KAFKA_BROKERS?.split(',') ?? servers.brokers;
  const { topic, db, env: outboxEnv, write: writeEvent } = await benchOutbox(kind, `bench-tx-${stamp}-${variant}`, brokers, variantSpec.keys !== undefined);
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
  const temporalAddress = variantSpec.env?.TXOUTBOX_TEMPORAL_ADDRESS ?? servers.temporal;
  // Once a second: each scrape of /metrics costs the process it reads (a worker about 5 ms of CPU
  // each; every 200 ms that was 12 µs per fast-path event), and the row's CPU comes from the last one.
  const sampler = setInterval(() => void Promise.all(processes().map((p) => p.sample())).catch(() => undefined), 1000);
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
        const event = await writeEvent(i, variantSpec.keys ?? K);
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
  // Events through the pipeline before the clock starts, and left out of the figures: a fresh
  // relay's or worker's first publication also opens its connections and reads the topic's metadata,
  // which a running relay paid long ago; a backlog's relay also gets its feed's first checkpoint from
  // them. One event, except on the fast path end to end (FAST_PATH_WARM_UP).
  const warmUps = variantSpec.fastPath === true && variantSpec.backlog === undefined ? FAST_PATH_WARM_UP[kind] : 1;
  await mapLimit(Array.from({ length: warmUps }, (_, i) => -1 - i), 8, write);
  await allPublished();
  const warmUp = [...committedAt.keys()];
  await Promise.all(processes().map((p) => p.sample()));
  const base = { relay: relay.stats().cpuSeconds, worker: worker?.stats().cpuSeconds ?? 0, relayTrips: relay.stats().storeTripsByCommand, workerTrips: worker?.stats().storeTripsByCommand ?? {}, rpcs: NaN };
  if (variantSpec.backlog !== undefined) {
    // The relay stopped, the backlog written, the relay started again: the clock runs from its readiness.
    relay.child.kill('SIGTERM');
    await new Promise((resolve) => relay.child.once('exit', resolve));
    await mapLimit(Array.from({ length: count }, (_, i) => i), 8, write);
    relay = startProcess('relay', env, 'txoutbox_relay_');
    await ready(relay);
    await relay.sample();
    base.relay = relay.stats().cpuSeconds;
    base.relayTrips = relay.stats().storeTripsByCommand;
  }
  base.rpcs = await temporalRpcs(temporalAddress);
  const cpuMeter = machineCpu();
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
  log(`${name}: CPU per event by process, from /proc: ${formatCpu(cpuMeter.stop(), count)}`);
  clearInterval(sampler);
  await Promise.all(processes().map((p) => p.sample()));
  const rpcs = (await temporalRpcs(temporalAddress)) - base.rpcs;
  const relayTrips = since(relay.stats().storeTripsByCommand, base.relayTrips);
  const workerTrips = since(worker?.stats().storeTripsByCommand ?? {}, base.workerTrips);
  const storeTrips = [...Object.values(relayTrips), ...Object.values(workerTrips)].reduce((sum, n) => sum + n, 0);
  log(`${name}: store round trips per event by command: relay ${perEvent(relayTrips, count)}${worker === undefined ? '' : `; worker ${perEvent(workerTrips, count)}`}`);
  const rows = (await db.publishedTimes()).filter((r) => !warmUp.includes(r.id));
  // From the first write to the last publication the store recorded (same machine, same clock).
  const seconds = (Math.max(...rows.map((r) => r.publishedAt.getTime())) - t0Wall) / 1000;
  const latencies = rows.map((r) => r.publishedAt.getTime() - (committedAt.get(r.id) ?? eventIdTime(r.id))).sort((a, b) => a - b);

  // History events per event, from one event's workflow (none on the fast path: no workflow at all).
  let historyPerEvent = 0;
  if (!variantSpec.fastPath) {
    const connection = await Connection.connect({ address: temporalAddress });
    const history = await new Client({ connection }).workflow.getHandle(eventWorkflowId(rows[0]?.id ?? '')).fetchHistory();
    historyPerEvent = history.events?.length ?? NaN;
    await connection.close();
  }

  await stopProcesses(processes());
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
    storeTripsPerEvent: storeTrips / count,
    temporalRpcsPerEvent: rpcs / count,
    note: [rate === null ? '' : `writes paced at ${rate.toFixed(1)} events/s`, retried === 0 ? '' : `${retried} aborted write transactions written again`].filter(Boolean).join('; ') || undefined,
  };
}

/** Each command's count since `before`. */
function since(now: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(now).map(([command, n]) => [command, n - (before[command] ?? 0)]));
}

/** `find 2.00, update 1.00`: each command per event, the most frequent first. */
function perEvent(trips: Record<string, number>, count: number): string {
  const parts = Object.entries(trips).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  return parts.length === 0 ? 'none' : parts.map(([command, n]) => `${command} ${(n / count).toFixed(2)}`).join(', ');
}
