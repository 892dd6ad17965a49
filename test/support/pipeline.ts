/**
 * Builds a whole outbox pipeline on the real servers for one test: a database of its own on the
 * store it is given (MongoDB or PostgreSQL), a Kafka topic of its own, a Temporal task queue of its
 * own; relay and worker started on demand.
 */
import { Client, Connection } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry/lib/client';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { z } from 'zod';
import { createEventRegistry, createJsonLogger, createOutbox, defineEventType, type EventRegistry, type Logger, type Outbox, type OutboxEvent } from '../../domain/outbox';
import type { Compensation } from '../../activities';
import type { OutboxMetrics } from '../../workers/process/metrics';
import { runCli } from '../../workers/cli/cli';
import { createRelay, type Relay, type RelayOptions, type RunningRelay } from '../../workers/relay/relay';
import type { NativeConnection } from '@temporalio/worker';
import { OTEL_WORKFLOW_INTERCEPTORS, OUTBOX_WORKFLOWS_PATH, startOutboxWorker, type RunningWorker } from '../../workers/worker/worker';
import { cachedPartitions } from '../../workers/kafka/coalescing-producer';
import { FAST_PATH_REQUEST_TIMEOUT_MS, FastPath } from '../../workers/relay/fast-path';
import { createOutboxProducer } from '../../workers/kafka/producer';
import { createKafkaPositionReader } from '../../workers/kafka/position-reader';
import { KafkaCollector } from './kafka-collector';
import { pipelineStore, StoreKind, type EventRow, type PipelineStore } from './pipeline-store';
import { testServers, uniqueName, waitFor } from './servers';
import { createTopicsWithLeaders } from '../../workers/kafka/topics';

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
let tracedBundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** The outbox workflows, bundled once per test file (with Temporal's OpenTelemetry interceptors when traced). */
export function outboxWorkflowBundle(traced = false): Promise<WorkflowBundleWithSourceMap> {
  if (traced) {
    tracedBundle ??= bundleWorkflowCode({
      workflowsPath: OUTBOX_WORKFLOWS_PATH,
      workflowInterceptorModules: [OTEL_WORKFLOW_INTERCEPTORS],
      logger: quietBundlerLogger,
    });
    return tracedBundle;
  }
  bundle ??= bundleWorkflowCode({ workflowsPath: OUTBOX_WORKFLOWS_PATH, logger: quietBundlerLogger });
  return bundle;
}

const quietBundlerLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: (message: string) => console.error(message),
};

export const orderPlacedSchema = z.object({
  orderId: z.string().min(1),
  customerId: z.string().min(1),
  totalCents: z.number().int().nonnegative(),
});

export class TestPipeline {
  readonly servers = testServers();
  /** The store under test, with its database of this test. */
  readonly db: PipelineStore;
  readonly store: PipelineStore['store'];
  readonly topic = uniqueName('orders');
  /** A topic no broker has: events of `orders.OrderShipped` can never be published until it is created. */
  readonly missingTopic = uniqueName('shipments');
  readonly deadLetterTopic = uniqueName('dead-letters');
  /** A topic whose broker-side message limit (max.message.bytes = 1024) is below the outbox's. */
  readonly smallTopic = uniqueName('notes');
  readonly taskQueue = uniqueName('outbox');
  readonly kafka = new Kafka({ clientId: 'txoutbox-test', brokers: this.servers.kafkaBrokers, logLevel: logLevel.NOTHING });
  readonly registry: EventRegistry;
  readonly outbox: Outbox<unknown>;
  readonly collector: KafkaCollector;
  /**
   * What the relays, fast paths and workers of this pipeline log (debug and up), kept in memory and
   * printed at teardown only when the test failed: a passing run stays quiet.
   */
  readonly logLines: string[] = [];
  readonly logger: Logger = createJsonLogger('debug', (line) => this.logLines.push(line));
  connection!: Connection;
  client!: Client;
  private admin!: Admin;
  private readonly relays: RunningRelay[] = [];
  private readonly workers: RunningWorker[] = [];
  private readonly closers: Array<() => Promise<void>> = [];

  constructor(kind: StoreKind = StoreKind.mongodb) {
    this.db = pipelineStore(kind);
    this.store = this.db.store;
    this.registry = createEventRegistry([
      defineEventType({ type: 'orders.OrderPlaced', schemaVersion: 1, aggregateType: 'order', topic: this.topic, schema: orderPlacedSchema }),
      defineEventType({
        type: 'orders.OrderShipped',
        schemaVersion: 1,
        aggregateType: 'order',
        topic: this.missingTopic,
        schema: z.object({ orderId: z.string() }),
      }),
      defineEventType({
        type: 'orders.LineAdded',
        schemaVersion: 1,
        aggregateType: 'order',
        topic: this.topic,
        ordering: 'per-key',
        schema: z.object({ orderId: z.string(), line: z.number().int(), note: z.string().optional() }),
      }),
      defineEventType({
        // Ordered under a key of the tenant and the order: keys up to the 1,024-byte limit.
        type: 'orders.TenantLineAdded',
        schemaVersion: 1,
        aggregateType: 'order',
        topic: this.topic,
        ordering: 'per-key',
        schema: z.object({ orderId: z.string(), line: z.number().int(), tenant: z.string() }),
        key: (aggregateId, payload) => `${(payload as { tenant: string }).tenant}/${aggregateId}`,
      }),
      defineEventType({
        type: 'orders.NoteLineAdded',
        schemaVersion: 1,
        aggregateType: 'order',
        topic: this.smallTopic,
        ordering: 'per-key',
        schema: z.object({ orderId: z.string(), line: z.number().int(), note: z.string() }),
      }),
      defineEventType({
        type: 'orders.OrderNoted',
        schemaVersion: 1,
        aggregateType: 'order',
        topic: this.smallTopic,
        schema: z.object({ orderId: z.string(), note: z.string() }),
      }),
    ]);
    this.outbox = createOutbox({ store: this.store, registry: this.registry, source: 'txoutbox-tests' });
    this.collector = new KafkaCollector(this.kafka, this.topic);
  }

  async setup(): Promise<this> {
    this.connection = await Connection.connect({ address: this.servers.temporalAddress });
    this.client = new Client({ connection: this.connection, interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] } });
    this.admin = this.kafka.admin();
    await this.admin.connect();
    await createTopicsWithLeaders(this.admin, [
      { topic: this.topic, numPartitions: 3 },
      { topic: this.deadLetterTopic, numPartitions: 1 },
      { topic: this.smallTopic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '1024' }] },
    ]);
    await this.db.setup();
    await this.collector.start();
    return this;
  }

  /** Places an order and its event in one transaction; `fail` throws after add() to roll back. */
  async placeOrder(orderId: string, options: { fail?: boolean; totalCents?: number } = {}): Promise<string> {
    return this.inTransaction(async (tx) => {
      const totalCents = options.totalCents ?? 1000;
      await this.db.insertOrder(tx, { id: orderId, customerId: 'c-1', totalCents });
      const event = await this.outbox.add(
        { type: 'orders.OrderPlaced', aggregateId: orderId, payload: { orderId, customerId: 'c-1', totalCents }, headers: { correlationId: `corr-${orderId}` } },
        tx,
      );
      if (options.fail) throw new Error('rolled back on purpose');
      return event.id;
    });
  }

  /** An event for the topic that does not exist. */
  async shipOrder(orderId: string): Promise<string> {
    return this.inTransaction(
      async (tx) => (await this.outbox.add({ type: 'orders.OrderShipped', aggregateId: orderId, payload: { orderId } }, tx)).id,
    );
  }

  /** An event for the small topic; a long note makes it larger than the broker accepts there. */
  async noteOrder(orderId: string, note: string): Promise<string> {
    return this.inTransaction(
      async (tx) => (await this.outbox.add({ type: 'orders.OrderNoted', aggregateId: orderId, payload: { orderId, note } }, tx)).id,
    );
  }

  /** One transaction of the store under test; `tx` is what `outbox.add()` takes ({ session } or { client }). */
  inTransaction<T>(work: (tx: unknown) => Promise<T>): Promise<T> {
    return this.db.inTransaction(work);
  }

  relay(options: Partial<RelayOptions> = {}): Relay {
    return createRelay({
      store: this.store,
      workflowClient: this.client.workflow,
      taskQueue: this.taskQueue,
      maxWaitMs: 200,
      // No sweep within a test unless it asks (relay.sweepNow(), or a shorter interval or grace).
      sweepIntervalMs: 3_600_000,
      sweepGraceMs: 3_600_000,
      publishPolicy: { initialIntervalMs: 200, maximumIntervalMs: 2_000 },
      logger: this.logger,
      ...options,
    });
  }

  async startRelay(relay: Relay = this.relay()): Promise<RunningRelay> {
    const running = await relay.start();
    this.relays.push(running);
    return running;
  }

  async startWorker(
    options: {
      compensations?: Record<string, Compensation>;
      metrics?: OutboxMetrics;
      workflowSpanExporter?: SpanExporter;
      wrapProducer?: (producer: Pick<Producer, 'send'>) => Pick<Producer, 'send'>;
      /** The store the worker uses, when not this pipeline's own (a fault-injecting wrapper of it). */
      store?: PipelineStore['store'];
      /** A NativeConnection to share with a client (eager workflow start). */
      connection?: NativeConnection;
      /** The Kafka client it publishes with, when not this pipeline's own (through a slow proxy), and that client's request timeout. */
      kafka?: Kafka;
      kafkaRequestTimeoutMs?: number;
      /** The service's event contracts: the version each type is published as. */
      contracts?: EventRegistry;
    } = {},
  ): Promise<RunningWorker> {
    const worker = await startOutboxWorker({
      connection: options.connection,
      wrapProducer: options.wrapProducer,
      compensations: options.compensations,
      metrics: options.metrics,
      workflowSpanExporter: options.workflowSpanExporter,
      temporalAddress: this.servers.temporalAddress,
      taskQueue: this.taskQueue,
      store: options.store ?? this.store,
      kafka: options.kafka ?? this.kafka,
      kafkaRequestTimeoutMs: options.kafkaRequestTimeoutMs,
      contracts: options.contracts,
      workflowBundle: await outboxWorkflowBundle(options.workflowSpanExporter !== undefined),
      logger: this.logger,
    });
    this.workers.push(worker);
    return worker;
  }

  /** A fast path over this test's topic (and the given types), with the relay's own producer settings. */
  async fastPath(
    options: {
      types?: string[];
      leaseMs?: number;
      metrics?: OutboxMetrics;
      wrap?: (producer: Producer) => Pick<Producer, 'sendBatch'>;
      /** The store it claims and records in, when not this pipeline's own (a fault-injecting wrapper of it). */
      store?: PipelineStore['store'];
      contracts?: EventRegistry;
    } = {},
  ): Promise<FastPath> {
    const kafka = new Kafka({ clientId: 'txoutbox-test-fast', brokers: this.servers.kafkaBrokers, logLevel: logLevel.NOTHING, requestTimeout: FAST_PATH_REQUEST_TIMEOUT_MS });
    const producer = createOutboxProducer(kafka, { retries: 1 });
    await producer.connect();
    this.closers.push(() => producer.disconnect());
    const admin = this.admin;
    return new FastPath(
      options.store ?? this.store,
      {
        topics: options.types ? [] : [this.topic],
        types: options.types ?? [],
        leaseMs: options.leaseMs,
        producer: options.wrap ? options.wrap(producer) : producer,
        partitionsOf: cachedPartitions(async (topic) => (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions ?? []),
        positions: createKafkaPositionReader(kafka),
        contracts: options.contracts,
      },
      this.logger,
      options.metrics,
    );
  }

  /** Workflow ids of this test's task queue, as Temporal's visibility lists them. */
  /** Creates `missingTopic` (one partition), so the events stuck for want of it can be published. */
  async createMissingTopic(): Promise<void> {
    await createTopicsWithLeaders(this.admin, [{ topic: this.missingTopic, numPartitions: 1 }]);
  }

  /** Runs the operator CLI against this pipeline's store and Temporal; its exit code and output. */
  async cli(args: string[]): Promise<{ code: number; output: string }> {
    const out: string[] = [];
    const env = { ...this.db.env, TXOUTBOX_TEMPORAL_ADDRESS: this.servers.temporalAddress };
    const code = await runCli(args, { out: (l) => out.push(l), err: (l) => out.push(l), confirm: async () => null }, env);
    return { code, output: out.join('\n') };
  }

  async workflowIds(): Promise<string[]> {
    const ids: string[] = [];
    for await (const wf of this.client.workflow.list({ query: `TaskQueue = '${this.taskQueue}'` })) ids.push(wf.workflowId);
    return ids.sort();
  }

  /**
   * The event once the store has marked it published. The mark follows Kafka's acknowledgement, so
   * it can come after a collector has read the copy.
   */
  async markedPublished(eventId: string): Promise<OutboxEvent> {
    return waitFor(async () => {
      const event = await this.store.get(eventId);
      return event?.status === 'published' ? event : undefined;
    }, { what: `event ${eventId} marked published` });
  }

  eventRows(): Promise<EventRow[]> {
    return this.db.eventRows();
  }

  /** The last log lines of this pipeline's relays and workers, on stderr, when the running test failed (see test-environment.js). */
  private printLogsIfFailed(): void {
    if ((globalThis as { __txoutboxTestFailed?: boolean }).__txoutboxTestFailed !== true) return;
    const shown = this.logLines.slice(-300);
    process.stderr.write(`--- the last ${shown.length} of ${this.logLines.length} log lines of this test's relays and workers (${this.db.kind}, task queue ${this.taskQueue}) ---\n${shown.join('\n')}\n---\n`);
  }

  /** Runs `close` at teardown, after the relays and workers stopped (a connection they share). */
  onTeardown(close: () => Promise<void>): void {
    this.closers.push(close);
  }

  async teardown(): Promise<void> {
    this.printLogsIfFailed();
    // Stuck events wait for an operator forever: end this test's workflows so none outlive it.
    for await (const wf of this.client.workflow.list({ query: `TaskQueue = '${this.taskQueue}' AND ExecutionStatus = 'Running'` })) {
      await this.client.workflow.getHandle(wf.workflowId, wf.runId).terminate('test finished').catch(() => undefined);
    }
    await Promise.all(this.relays.map((r) => r.shutdown()));
    await Promise.all(this.workers.map((w) => w.shutdown()));
    await Promise.all(this.closers.map((close) => close().catch(() => undefined)));
    await this.collector.stop();
    const topics = (await this.admin.listTopics()).filter((t) => [this.topic, this.missingTopic, this.deadLetterTopic, this.smallTopic].includes(t));
    await this.admin?.deleteTopics({ topics }).catch(() => undefined);
    await this.admin?.disconnect();
    await this.db.teardown();
    await this.connection?.close();
  }
}
