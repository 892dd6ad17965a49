/**
 * Benchmark (not a test): txoutbox end to end against its limits, measured side by side in one run.
 *
 *   npm run bench -- --headline [--stores postgres|mongodb] [--temporal NAME=host:port,...]   the headline table alone, one store, in about five minutes (each engine --temporal names adds its bare-Temporal and default-mode rows)
 *   npm run bench -- [--events 1000] [--keys 20] [--backlog 20000] [--out BENCHMARKS.md] [--quick] [--engines] [--writes] [--only engines,writes,steps,fast,relays,hot,idle] [--stores postgres,mongodb] [--logs DIR] [--steps id,...] [--cpu-prof DIR] [--temporal NAME=host:port,...] [--fast-events 20000] [--kafka-cluster host:port,...]
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
 *                                    on PostgreSQL with --fast-events events (default 20000), as the polling rows
 *   ..., draining a backlog          polling relay and fast path (feed batches of 100 and 500): --backlog events written first, the relay's drain rate alone
 *   --only relays                    the fast path draining a backlog with 1, 2 and 4 partitioned relays (issue 17), and 1 again
 *   --only hot                       the default mode with every event on one ordered key, then over 20 keys (issue 31,
 *                                    item 6), on each store --stores names (at most 300 events on SecantusDB), after
 *                                    a baseline of one key without runs (TXOUTBOX_SEQUENCER_RUN_LIMIT=1, at most 300 events)
 *   --only idle                      a relay and a worker doing nothing for 10 s after one event, default mode and fast path,
 *                                    on each store --stores names: their CPU, and every process group's (from /proc) in the log
 *   --only fast                      the fast path rows alone (both stores, or --stores) next to the
 *                                    polling relay (writes in one transaction per event, and autocommitted), end to end and draining,
 *                                    and the writers alone (outbox.add(), and the polling relay's bare INSERTs)
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
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { Pool } from 'pg';
import { StoreKind } from '../test/support/pipeline-store';
import { ENGINES, bareTemporal, bareTemporalOn, rawKafka } from './bench/baselines';
import { txoutbox, writeCost } from './bench/outbox-rows';
import { buildShipped, children } from './bench/processes';
import { clusterRows, fastPathRows, idleRows, partitionedDrains, pollingBaselines, pollingDrainAgain, table, writersAlone } from './bench/sections';
import { FAST_N, K, N, REPO, type Row, TUNING, type Variant, chosenStores, log, servers, values } from './bench/settings';

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const pool = new Pool({ connectionString: servers.pg, max: 20 });
  log(`${N} events over ${K} keys`);
  buildShipped();
  const rows: Row[] = [];
  // --only engines,writes: those sections alone, next to the bare-Temporal baseline.
  const only = new Set(values.only.split(',').filter(Boolean));
  const section = (name: 'engines' | 'writes'): boolean => only.has(name) || values[name];
  const steps = values.steps === '' ? TUNING : TUNING.filter((v) => values.steps.split(',').includes(v.id));
  if (values.headline) {
    await headline(pool);
    return;
  }
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
    for (const { engine, address } of namedEngines()) {
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
    const writers = await writersAlone(pool, FAST_N);
    const fastRows: Row[] = [];
    for (const store of chosenStores()) fastRows.push(...(await fastPathRows(store)));
    const drainAgain = await pollingDrainAgain(pool);
    console.log(table([...rows, ...polling.rows, writers.add, writers.plain, ...fastRows, drainAgain], bare.eventsPerSecond, polling.divisor));
    await pool.end();
    return;
  }
  if (only.has('hot')) {
    // Issue 31, item 6: the default mode with every event on one ordered key, then over 20 keys.
    // The baseline, in the same run: one key without runs (TXOUTBOX_SEQUENCER_RUN_LIMIT=1, every event
    // through its own workflow one at a time, as before item 6), on at most 300 events (about 3-4/s).
    for (const store of chosenStores()) {
      const events = store === StoreKind.mongodb ? Math.min(N, 300) : N;
      const baseline: Variant = { id: 'keys1_norun', name: `baseline: ${Math.min(events, 300)} events on one ordered key without runs (TXOUTBOX_SEQUENCER_RUN_LIMIT=1)`, store, events: Math.min(events, 300), keys: 1, env: { TXOUTBOX_SEQUENCER_RUN_LIMIT: '1' } };
      const hot = [1, 20].map((keys): Variant => ({ id: `keys${keys}`, name: `txoutbox default mode, ${events} events on ${keys === 1 ? 'one ordered key' : `${keys} ordered keys`}, written as fast as possible (8 writers)`, store, events, keys }));
      for (const v of [baseline, ...hot]) {
        log(`${store}: ${v.name}`);
        rows.push(await txoutbox(v, null));
      }
    }
  }
  if (values['kafka-cluster'] !== '') rows.push(...(await clusterRows(values['kafka-cluster'])));
  if (only.has('relays')) rows.push(...(await partitionedDrains()));
  if (only.has('idle')) rows.push(...(await idleRows()));
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

/** The engines --temporal names (NAME=host:port,...), in its order. */
function namedEngines(): Array<{ engine: string; address: string }> {
  return values.temporal
    .split(',')
    .filter(Boolean)
    .map((spec) => {
      const [engine, address] = [spec.slice(0, spec.lastIndexOf('=')), spec.slice(spec.lastIndexOf('=') + 1)];
      if (!engine || !address) throw new Error(`--temporal wants NAME=host:port, got ${spec}`);
      return { engine, address };
    });
}

/**
 * --headline (issue 31): on one store (the first of --stores), raw kafkajs in batches of 100 (the
 * ceiling a drain can approach), bare Temporal, the default mode as shipped (and the shapes it is
 * compared with: every attempt an activity, as before issue 31, and one process), the plain polling
 * relay and the fast path, end to end and draining; then the ratios the issue asks about.
 */
async function headline(pool: Pool): Promise<void> {
  const store = chosenStores().includes(StoreKind.postgres) ? StoreKind.postgres : StoreKind.mongodb;
  log('raw kafkajs, batched');
  const kafka = await rawKafka(true);
  log('bare Temporal');
  const bare = await bareTemporal();
  const defaults: Variant = { id: 'default', name: `txoutbox default mode as shipped, ${N} events written as fast as possible (8 writers)`, store };
  const shapes: Row[] = [];
  for (const v of [defaults, ...TUNING.filter((t) => t.id === 'activity_first' || t.id === 'one_process')]) {
    log(v.name);
    shapes.push(await txoutbox({ ...v, store }, null));
  }
  // --temporal NAME=host:port,...: bare Temporal and the default mode on each engine named too.
  const engines: Array<{ engine: string; bare: Row; shipped: Row }> = [];
  for (const { engine, address } of namedEngines()) {
    log(`${engine}: bare Temporal`);
    const bareThere = await bareTemporal(address, `bare Temporal on ${engine}`);
    log(`${engine}: the default mode as shipped`);
    const shipped = await txoutbox({ ...defaults, id: `engine_${engine.replace(/\W/g, '_')}`, name: `txoutbox default mode as shipped on ${engine}, ${N} events written as fast as possible (8 writers)`, env: { TXOUTBOX_TEMPORAL_ADDRESS: address } }, null);
    engines.push({ engine, bare: bareThere, shipped });
  }
  const polling = await pollingBaselines(pool);
  log(`the writers alone, ${FAST_N} events through outbox.add(), then as the plain polling relay's bare INSERTs, no relay`);
  const writers = await writersAlone(pool, FAST_N);
  const fast = await fastPathRows(store);
  // The polling relay's drain again after the fast path's: the drains are compared with the mean of
  // the two around them (the shared machine drifts within a run).
  const drainAgain = await pollingDrainAgain(pool);
  await pool.end();
  const [fastMax, fastHalf, fastDrain100, fastDrain500] = fast as [Row, Row, Row, Row];
  const drains = [polling.drain, drainAgain];
  const pollingDrain: Row = { name: 'the polling relay\'s two drains, mean', eventsPerSecond: drains.reduce((sum, d) => sum + d.eventsPerSecond, 0) / drains.length };
  const ratio = (a: Row, b: Row): string => (a.eventsPerSecond / b.eventsPerSecond).toFixed(2);
  const trips = (r: Row): string => `${r.storeTripsPerEvent?.toFixed(1) ?? '0'} store round trips, ${r.temporalRpcsPerEvent?.toFixed(1) ?? '?'} Temporal RPCs`;
  const cpuMs = (seconds: number | undefined): string => (seconds === undefined ? '?' : ((seconds * 1000) / N).toFixed(1));
  console.log(table([kafka, bare, ...shapes, ...engines.flatMap((e) => [e.bare, e.shipped]), ...polling.rows, writers.add, writers.plain, ...fast, drainAgain], bare.eventsPerSecond, polling.divisor));
  console.log(
    [
      '',
      `default mode as shipped / bare Temporal: ${ratio(shapes[0] as Row, bare)} (every attempt an activity: ${ratio(shapes[1] as Row, bare)}; one process: ${ratio(shapes[2] as Row, bare)})`,
      ...engines.map((e) => `on ${e.engine}: default mode as shipped / bare Temporal: ${ratio(e.shipped, e.bare)} (${e.shipped.eventsPerSecond.toFixed(1)} against ${e.bare.eventsPerSecond.toFixed(1)} events/s)`),
      `CPU ms per event: bare Temporal's worker (with the client starting the workflows, one process) ${cpuMs(bare.workerCpuS)}; default mode as shipped: worker ${cpuMs(shapes[0]?.workerCpuS)}, relay ${cpuMs(shapes[0]?.relayCpuS)}`,
      `fast path / polling relay, end to end: ${(fastMax.eventsPerSecond / polling.divisor).toFixed(2)} (the same writes through outbox.add(), the polling relay over txoutbox's table: ${ratio(fastMax, polling.overOutbox)}); draining: ${ratio(fastDrain100, pollingDrain)} (batches of 100), ${ratio(fastDrain500, pollingDrain)} (batches of 500), against the mean of the polling relay's drains before and after them (${drains.map((d) => d.eventsPerSecond.toFixed(0)).join(' and ')} events/s)`,
      `the writers alone (outbox.add(), no relay) / polling relay end to end: ${(writers.add.eventsPerSecond / polling.divisor).toFixed(2)}: the most a relay fed by outbox.add() can reach here; fast path / the writers alone: ${ratio(fastMax, writers.add)}; outbox.add() alone / the plain relay's bare INSERTs alone: ${ratio(writers.add, writers.plain)}`,
      `fast path at half rate: p99 ${fastHalf.p99?.toFixed(0) ?? '?'} ms; drain (batches of 500) / raw kafkajs batched: ${ratio(fastDrain500, kafka)}`,
      `per event, default mode: ${trips(shapes[0] as Row)}; bare Temporal: ${trips(bare)}; fast path: ${trips(fastMax)}`,
    ].join('\n'),
  );
}

main().then(
  // Done: the figures are printed. One run of the headline printed its table and never exited
  // (what held it open was not found): whatever a row left open does not keep the run going.
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    // A row that failed leaves its relay and worker running (a crashed run once left two busy for
    // half an hour, skewing what ran next): they go with it.
    for (const child of children) child.kill('SIGKILL');
    process.exit(1);
  },
);
