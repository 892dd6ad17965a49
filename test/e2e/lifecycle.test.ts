/**
 * The relay as a process: health endpoints, SIGTERM under load losing nothing and the restart
 * resuming from the saved checkpoint, and a bad config value failing at start with its name.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventWorkflowId } from '../../workers/relay/start-event-workflow';
import { stateQuery } from '../../workflows/signals';
import { KafkaCollector } from '../support/kafka-collector';
import { TestPipeline } from '../support/pipeline';
import { createOutbox, OutboxError } from '../../domain/outbox';
import { runCli } from '../../workers/cli/cli';
import { pipelineStore, STORE_KINDS } from '../support/pipeline-store';
import { waitFor } from '../support/servers';
import { binArgs, pipelineProcessEnv, readyProcess, startOutboxProcess, type OutboxProcess } from '../support/processes';

describe.each(STORE_KINDS)('relay process lifecycle (%s store)', (kind) => {
  let p: TestPipeline;
  let env: NodeJS.ProcessEnv;
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    p = await new TestPipeline(kind).setup();
    env = pipelineProcessEnv(p);
  });

  afterEach(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await p.teardown();
  });

  function startRelayProcess(): OutboxProcess {
    const relay = startOutboxProcess('relay', env);
    children.push(relay.child);
    return relay;
  }

  const ready = readyProcess;

  test('SIGTERM during load loses nothing, and the restart resumes from the checkpoint', async () => {
    // Arrange
    await p.startWorker();
    const first = startRelayProcess();
    await ready(first);
    const live = await fetch(`http://127.0.0.1:${await first.port}/healthz`);

    // Act: load, SIGTERM in the middle of it, more load while the relay is down, restart.
    const ids: string[] = [];
    for (let i = 1; i <= 10; i++) ids.push(await p.placeOrder(`order-${i}`));
    first.child.kill('SIGTERM');
    for (let i = 11; i <= 20; i++) ids.push(await p.placeOrder(`order-${i}`));
    const firstExit = await first.exited;
    const checkpoints = await p.db.checkpointNames();
    const second = startRelayProcess();
    await ready(second);
    await p.collector.waitForEventIds(ids);
    second.child.kill('SIGTERM');
    const secondExit = await second.exited;

    // Assert
    expect(live.status).toBe(200);
    expect(firstExit).toBe(0);
    expect(first.logs.some((l) => l.includes('"msg":"relay stopped"'))).toBe(true);
    expect(checkpoints).toEqual(['relay']);
    expect(second.logs.some((l) => l.includes('no checkpoint'))).toBe(false);
    expect(secondExit).toBe(0);
    const workflowIds = await p.workflowIds();
    for (const id of ids) {
      expect(workflowIds.filter((w) => w === eventWorkflowId(id))).toHaveLength(1);
      expect(p.collector.withEventId(id)).toHaveLength(1);
    }
  });

  test.each([
    ['relay', 'Temporal', { TXOUTBOX_TEMPORAL_ADDRESS: '127.0.0.1:1' }, 'cannot reach Temporal at 127.0.0.1:1 (TXOUTBOX_TEMPORAL_ADDRESS)'],
    ['worker', 'Kafka', { TXOUTBOX_KAFKA_BROKERS: '127.0.0.1:1' }, 'cannot reach Kafka at 127.0.0.1:1 (TXOUTBOX_KAFKA_BROKERS)'],
    kind === 'mongodb'
      ? ['relay', 'MongoDB', { TXOUTBOX_MONGODB_URI: 'mongodb://txoutbox:pw-not-shown@127.0.0.1:1/?directConnection=true' }, 'cannot reach MongoDB (TXOUTBOX_MONGODB_URI): mongodb://txoutbox:[redacted]@127.0.0.1:1/?directConnection=true']
      : ['relay', 'PostgreSQL', { TXOUTBOX_PG_URL: 'postgres://txoutbox:pw-not-shown@127.0.0.1:1/txoutbox' }, 'cannot reach PostgreSQL (TXOUTBOX_PG_URL): postgres://txoutbox:[redacted]@127.0.0.1:1/txoutbox'],
  ])('bad input: the %s with an unreachable %s stops by itself with a clear message (exit 1), not waiting forever', async (role, _server, overrides, message) => {
    // Act
    const child = spawn(process.execPath, binArgs(role as 'relay' | 'worker'), { env: { ...env, ...overrides }, stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    // Bounded by the process itself (10 s connect timeouts, kafkajs' bounded retries); the jest
    // timeout only guards a hang.
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));

    // Assert
    expect(code).toBe(1);
    expect(stderr).toContain(`txoutbox ${role}: ${message}`);
    expect(stderr).not.toContain('pw-not-shown');
  });

  test('sweeps run one at a time, however often the feed reports a gap, and none runs or starts after shutdown', async () => {
    // Arrange: every page the sweeper reads takes 200 ms, and is counted while it runs.
    const reads = { inFlight: 0, most: 0, total: 0 };
    const store = Object.create(p.store) as typeof p.store;
    store.findPending = async (query) => {
      reads.inFlight += 1;
      reads.total += 1;
      reads.most = Math.max(reads.most, reads.inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, 200));
        return await p.store.findPending(query);
      } finally {
        reads.inFlight -= 1;
      }
    };
    const relay = p.relay({ store, sweepIntervalMs: 50, sweepGraceMs: 0 });
    const running = await relay.start();

    // Act: gaps reported while sweeps run (a feed that reopens keeps reporting them).
    for (let i = 0; i < 20; i++) {
      relay.emit('gap', 'history-lost');
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    await running.shutdown();
    const atShutdown = { ...reads };
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    // Assert
    expect(atShutdown.total).toBeGreaterThan(1);
    expect(atShutdown.most).toBe(1);
    expect(atShutdown.inFlight).toBe(0);
    expect(reads.total).toBe(atShutdown.total);
  });

  test('gaps recurring faster than the grace period do not postpone the sweeper: it still runs every interval', async () => {
    // Arrange: a grace period longer than the interval, and a feed that keeps reporting gaps.
    const relay = p.relay({ sweepIntervalMs: 1_000, sweepGraceMs: 5_000 });
    let sweeps = 0;
    relay.on('sweep', () => (sweeps += 1));
    const running = await relay.start();

    // Act: a gap every 200 ms for 4 s (each once moved the next sweep 5 s ahead).
    for (let i = 0; i < 20; i++) {
      relay.emit('gap', 'history-lost');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await running.shutdown();

    // Assert
    expect(sweeps).toBeGreaterThanOrEqual(2);
  });

  test('bad input: a relay without a sweeper is refused with INVALID_CONFIG (the sweeper publishes what the feed skips)', () => {
    expect(() => p.relay({ sweepIntervalMs: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringContaining('sweepIntervalMs') }));
  });

  test('a store never set up: the relay refuses to start and add() fails with STORE_NOT_SET_UP, both naming `txoutbox migrate`; after it, both work', async () => {
    // Arrange: a database (schema) of its own, never set up.
    const fresh = pipelineStore(kind);
    const freshEnv = { ...env, ...fresh.env };
    const outbox = createOutbox({ store: fresh.store, registry: p.registry, source: 'txoutbox-tests' });
    const addOrder = () => fresh.inTransaction((tx) => outbox.add({ type: 'orders.OrderPlaced', aggregateId: 'order-1', payload: { orderId: 'order-1', customerId: 'c-1', totalCents: 1 } }, tx));
    try {
      // Act
      const refused = startOutboxProcess('relay', freshEnv);
      children.push(refused.child);
      const refusedCode = await refused.exited;
      const addError = await addOrder().catch((err: unknown) => err);
      const out: string[] = [];
      const setupCode = await runCli(['migrate'], { out: (l) => out.push(l), err: (l) => out.push(l), confirm: async () => null }, freshEnv);
      const added = await addOrder();
      const relay = startOutboxProcess('relay', freshEnv);
      children.push(relay.child);
      await readyProcess(relay);

      // Assert
      expect(refusedCode).toBe(1);
      expect(refused.logs.join('\n')).toMatch(/txoutbox relay: failed to start: .*the outbox store is not set up.*run `txoutbox migrate` once/);
      expect(addError).toBeInstanceOf(OutboxError);
      expect(addError).toMatchObject({ code: 'STORE_NOT_SET_UP', message: expect.stringContaining('run `txoutbox migrate` once') });
      expect(setupCode).toBe(0);
      expect(out.join('\n')).toContain('the outbox store is set up');
      expect(added.id).toBeDefined();
    } finally {
      await fresh.teardown().catch(() => undefined);
    }
  });

  test('the relay process takes its retry policy and dead-letter topic from TXOUTBOX_PUBLISH_* and TXOUTBOX_DEAD_LETTER_TOPIC', async () => {
    // Arrange: one attempt, then escalation with a dead-letter copy.
    const deadLetters = new KafkaCollector(p.kafka, p.deadLetterTopic);
    await deadLetters.start();
    await p.startWorker();
    const relay = startOutboxProcess('relay', { ...env, TXOUTBOX_PUBLISH_MAX_ATTEMPTS: '1', TXOUTBOX_PUBLISH_RETRY_INITIAL_MS: '100', TXOUTBOX_DEAD_LETTER_TOPIC: p.deadLetterTopic });
    children.push(relay.child);
    await readyProcess(relay);

    // Act: an event for a topic that does not exist.
    const eventId = await p.shipOrder('order-1');
    await deadLetters.waitForEventIds([eventId]);

    // Assert
    expect(await p.client.workflow.getHandle(eventWorkflowId(eventId)).query(stateQuery)).toMatchObject({ status: 'stuck', attempts: 1 });
    expect(await p.store.get(eventId)).toMatchObject({ status: 'stuck', attempts: 1 });
    await deadLetters.stop();
  });

  test('the worker process runs the compensations of TXOUTBOX_COMPENSATIONS_MODULE, and the CLI finds workflows by the TXOUTBOX_WORKFLOW_ID_PREFIX the relay uses', async () => {
    // Arrange: a relay that escalates after one attempt, under a workflow-id prefix of its own.
    const dir = mkdtempSync(join(tmpdir(), 'txoutbox-compensations-'));
    const log = join(dir, 'compensated.log');
    const portFile = join(dir, 'worker.port');
    const prefixed = { ...env, TXOUTBOX_WORKFLOW_ID_PREFIX: 'shop-', TXOUTBOX_PUBLISH_MAX_ATTEMPTS: '1' };
    const worker = startOutboxProcess('worker', {
      ...prefixed,
      TXOUTBOX_COMPENSATIONS_MODULE: join(__dirname, '..', 'fixtures', 'compensations.js'),
      COMPENSATION_LOG: log,
      TXOUTBOX_HEALTH_PORT_FILE: portFile,
    });
    const relay = startOutboxProcess('relay', prefixed);
    children.push(worker.child, relay.child);
    await Promise.all([readyProcess(worker), readyProcess(relay)]);
    const eventId = await p.shipOrder('order-1'); // its topic does not exist: it gets stuck
    await waitFor(async () => (await p.store.get(eventId))?.status === 'stuck', { what: 'the event to be stuck' });
    const out: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(l), confirm: async () => null };

    // Act
    const showCode = await runCli(['show', eventId], io, prefixed);
    const compensateCode = await runCli(['compensate', eventId, '--reason', 'order cancelled', '--yes'], io, prefixed);
    const unprefixedCode = await runCli(['show', eventId], io, env);

    // Assert
    expect(showCode).toBe(0);
    expect(out.join('\n')).toContain(`workflow shop-${eventId}: RUNNING`);
    expect(compensateCode).toBe(0);
    expect(readFileSync(log, 'utf8')).toBe(`${eventId}\n`);
    expect(await p.store.get(eventId)).toMatchObject({ status: 'compensated' });
    expect(unprefixedCode).toBe(0);
    expect(out.join('\n')).toContain(`workflow outbox-${eventId}: not found`);
    expect(Number(readFileSync(portFile, 'utf8'))).toBe(await worker.port);
  });

  test('a relay process that runs the worker itself (TXOUTBOX_RELAY_RUNS_WORKER) publishes alone, starting workflows eagerly (TXOUTBOX_EAGER_START), in the version of TXOUTBOX_CONTRACTS_MODULE', async () => {
    // Arrange: no worker anywhere but the relay's own; OrderPlaced is published as v2, upcast from the v1 the service writes.
    const contracts = join(__dirname, '..', 'fixtures', 'contracts', 'pipeline-orders.js');
    const relay = startOutboxProcess('relay', { ...env, TXOUTBOX_RELAY_RUNS_WORKER: 'true', TXOUTBOX_EAGER_START: 'true', TXOUTBOX_CONTRACTS_MODULE: contracts });
    children.push(relay.child);
    await readyProcess(relay);

    // Act
    const eventId = await p.placeOrder('order-1');
    await p.collector.waitForEventIds([eventId]);
    const exposition = await (await fetch(`http://127.0.0.1:${await relay.port}/metrics`)).text();
    relay.child.kill('SIGTERM');
    const code = await relay.exited;

    // Assert
    expect(exposition).toMatch(/^txoutbox_workflows_started_eagerly_total 1$/m);
    const [copy] = p.collector.withEventId(eventId);
    expect(copy?.cloudEvent.schemaVersion).toBe(2);
    expect(JSON.parse(copy?.value ?? 'null')).toEqual({ orderId: 'order-1', customerId: 'c-1', totalCents: 1000, currency: 'EUR' });
    expect(await p.markedPublished(eventId)).toMatchObject({ schemaVersion: 1 });
    expect(code).toBe(0);
  });

  test('bad input: a contracts module whose versions break their compatibility stops the worker at start with INCOMPATIBLE_SCHEMA', () => {
    // Act
    const result = spawnSync(process.execPath, binArgs('worker'), { env: { ...env, TXOUTBOX_CONTRACTS_MODULE: join(__dirname, '..', 'fixtures', 'contracts', 'orders-breaking.js') }, encoding: 'utf8', timeout: 60_000 });

    // Assert
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('orders.OrderPlaced v2 breaks its FULL compatibility with v1: $.currency');
  });

  test('bad input: a compensations module that does not load or holds no functions stops the worker at start, naming the variable', () => {
    // Arrange
    const dir = mkdtempSync(join(tmpdir(), 'txoutbox-compensations-'));
    const notFunctions = join(dir, 'not-functions.js');
    writeFileSync(notFunctions, "exports.compensations = { 'orders.OrderShipped': 'refund' };\n");

    // Act
    const run = (module: string) => spawnSync(process.execPath, binArgs('worker'), { env: { ...env, TXOUTBOX_COMPENSATIONS_MODULE: module }, encoding: 'utf8', timeout: 60_000 });
    const missing = run(join(dir, 'nowhere.js'));
    const bad = run(notFunctions);

    // Assert
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain(`TXOUTBOX_COMPENSATIONS_MODULE (${join(dir, 'nowhere.js')}) cannot be loaded`);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('has a compensation for orders.OrderShipped that is not a function');
  });

  test('a bad config value fails at start, naming the variable', () => {
    // Act
    const result = spawnSync(process.execPath, binArgs('relay'), { env: { ...env, TXOUTBOX_HEALTH_PORT: 'eighty' }, encoding: 'utf8', timeout: 60_000 });

    // Assert
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('TXOUTBOX_HEALTH_PORT must be a port number');
  });
});
