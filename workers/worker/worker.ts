// workers/worker/: the Temporal worker of the outbox: the workflows (workflows/) and their activities
// (activities/) over a store and a Kafka producer, exported as txoutbox/worker.
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { TLSConfig } from '@temporalio/client';
import type { Kafka, Producer } from 'kafkajs';
import { createActivities, type Compensation } from '../../activities';
import { silentLogger, type EventRegistry, type Logger, type OutboxEventStore, type OutboxRelayStore } from '../../domain/outbox';
import { Resource } from '@opentelemetry/resources';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { makeWorkflowExporter, OpenTelemetryActivityInboundInterceptor } from '@temporalio/interceptors-opentelemetry/lib/worker';
import { CoalescingProducer, cachedPartitions, type CoalescingProducerOptions } from '../kafka/coalescing-producer';
import { createKafkaPositionReader } from '../kafka/position-reader';
import { createOutboxProducer, sendWindowMs } from '../kafka/producer';
import type { OutboxMetrics } from '../process/metrics';
import { FastPath } from '../relay/fast-path';

export interface OutboxWorkerOptions {
  /** Temporal frontend address (unused when `connection` is given). */
  temporalAddress: string;
  /**
   * A NativeConnection of the caller's, which the worker uses and leaves open. Share it with a
   * `new Client({ connection })` whose relay has `eagerStart: true`: the server then hands each new
   * workflow's first task straight to this worker. @default the worker connects (and closes) its own
   */
  connection?: NativeConnection;
  /** TLS or mutual TLS to the Temporal frontend. @default plaintext */
  temporalTls?: TLSConfig | boolean;
  /** A Temporal API key (Temporal Cloud), sent over TLS. */
  temporalApiKey?: string;
  /** @default "default" */
  namespace?: string;
  taskQueue: string;
  /**
   * The outbox store (any adapter): what the activities need of it. Its claim release and bulk mark
   * let a key's sequencer publish the key's waiting events as one run.
   */
  store: OutboxEventStore & Pick<OutboxRelayStore, 'release' | 'markPublishedMany'>;
  /** A kafkajs client; the worker creates, connects and disconnects its producer. */
  kafka: Kafka;
  /** How long Kafka may take to acknowledge one publish, in ms. @default 10000 */
  ackTimeoutMs?: number;
  /** Prebuilt workflow bundle (tests build it once); @default bundles `workflows/` at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Prometheus metrics to count into; none by default. */
  metrics?: OutboxMetrics;
  /**
   * Where workflow spans go (through Temporal's OpenTelemetry sink). Activity spans use the globally
   * registered tracer provider either way. @default workflow spans are not exported
   */
  workflowSpanExporter?: SpanExporter;
  /** Wraps the producer the activities send with (instrumentation, fault injection in tests). */
  wrapProducer?: (producer: Pick<Producer, 'send'>) => Pick<Producer, 'send'>;
  /**
   * The service's event types (`createEventRegistry`): each event is published as the version its
   * type is published as (its `publish` option), upcast from the version it was written as.
   * @default every event is published as it was written
   */
  contracts?: EventRegistry;
  /** Compensations by event type, run on an operator's `compensate`. */
  compensations?: Record<string, Compensation>;
  /** @default 100 (the SDK's default) */
  maxConcurrentActivityTaskExecutions?: number;
  /** @default 40 (the SDK's default) */
  maxConcurrentWorkflowTaskExecutions?: number;
  /** @default min(10, maxConcurrentWorkflowTaskExecutions) (the SDK's default) */
  maxConcurrentWorkflowTaskPolls?: number;
  /**
   * How publishes are queued for the producer (see CoalescingProducer): every publish goes through
   * this queue, so an attempt that ends before its message was sent withdraws it, and what queues
   * behind a request in flight leaves in the next one. `lingerMs`: how long a first message waits for
   * others. @default { lingerMs: 0 }
   */
  coalesce?: Omit<CoalescingProducerOptions, 'partitionsOf'>;
  /**
   * The kafkajs client's `requestTimeout` (`kafka` above), in ms: with the producer's tries it bounds
   * how long a send may still be acknowledged after it left. @default 30000 (kafkajs' default)
   */
  kafkaRequestTimeoutMs?: number;
  logger?: Logger;
}

export interface RunningWorker {
  /** Stops polling, lets running activities finish, disconnects the producer. */
  shutdown(): Promise<void>;
  /** Rejects if the worker stops on its own with an error. */
  readonly done: Promise<void>;
}

/**
 * The worker's producer sends a request once: a failure fails the attempt, and Temporal's retry
 * policy sends again. So a send is in flight for at most one request timeout, which bounds how long
 * after an attempt its message may still be acknowledged (`sendWindowMs`).
 */
const WORKER_PRODUCER_RETRIES = 0;

/** Most events of one key a sequencer's run carries (one Kafka request). */
const RUN_MAX_BATCH = 500;

/** Path of the workflows the outbox worker registers (for bundling). */
export const OUTBOX_WORKFLOWS_PATH = require.resolve('../../workflows');

/** Temporal's OpenTelemetry workflow interceptors (bundled with the workflows when tracing). */
export const OTEL_WORKFLOW_INTERCEPTORS = require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');

/** The Temporal worker that runs the publish workflows and their activity. */
export async function startOutboxWorker(options: OutboxWorkerOptions): Promise<RunningWorker> {
  const logger = options.logger ?? silentLogger;
  const producer: Producer = createOutboxProducer(options.kafka, { retries: WORKER_PRODUCER_RETRIES });
  await producer.connect();
  const admin = options.kafka.admin();
  await admin.connect();
  const topicExists = async (topic: string): Promise<boolean> => (await admin.listTopics()).includes(topic);
  const partitionsOf = cachedPartitions(async (topic) => (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions ?? []);
  const sender = new CoalescingProducer(producer, { lingerMs: 0, ...options.coalesce, partitionsOf });
  // The key sequencers' runs have a producer and a queue of their own, so what bounds a run's send
  // (and so its claim's lease) is its own request, never the publish attempts queued ahead of it.
  const runProducer: Producer = createOutboxProducer(options.kafka, { retries: WORKER_PRODUCER_RETRIES });
  await runProducer.connect();
  const runSender = new CoalescingProducer(runProducer, { lingerMs: 0, maxBatch: RUN_MAX_BATCH, partitionsOf });
  let connection: NativeConnection | undefined;
  try {
    connection =
      options.connection ??
      (await NativeConnection.connect({
        address: options.temporalAddress,
        ...(options.temporalTls === undefined ? {} : { tls: options.temporalTls }),
        ...(options.temporalApiKey === undefined ? {} : { apiKey: options.temporalApiKey }),
      }));
    const worker = await Worker.create(workerOptions(options, connection, createActivitiesFor(options, { sender, runSender }, topicExists, logger)));
    const ownConnection = options.connection === undefined ? connection : undefined;
    const done = worker.run().finally(async () => {
      await producer.disconnect().catch((err: unknown) => logger.warn('producer disconnect failed', { error: err }));
      await runProducer.disconnect().catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
      await ownConnection?.close().catch(() => undefined);
    });
    logger.info('outbox worker started', { taskQueue: options.taskQueue });
    return {
      done,
      shutdown: async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await done;
      },
    };
  } catch (err) {
    await producer.disconnect().catch(() => undefined);
    await runProducer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    if (options.connection === undefined) await connection?.close().catch(() => undefined);
    throw err;
  }
}

/** The worker's Kafka senders: the publish attempts', and the key sequencers' runs' over a producer of their own. */
interface WorkerSenders {
  sender: CoalescingProducer;
  runSender: CoalescingProducer;
}

/** The activities over the worker's store and Kafka senders. */
function createActivitiesFor(options: OutboxWorkerOptions, senders: WorkerSenders, topicExists: (topic: string) => Promise<boolean>, logger: Logger) {
  const wrap = (sender: CoalescingProducer) => (options.wrapProducer ? options.wrapProducer(sender) : sender);
  const longestSendMs = sendWindowMs(options.kafkaRequestTimeoutMs ?? 30_000, WORKER_PRODUCER_RETRIES);
  const positions = createKafkaPositionReader(options.kafka);
  const ackTimeoutMs = options.ackTimeoutMs ?? 10_000;
  // A run's claim outlives its longest send and Kafka's acknowledgement, with room to queue behind
  // another run. The sequencer waits SEQUENCER_RUN_TIMEOUT_MS for the run (2 minutes); a longer claim
  // (a longer Kafka request timeout) is as safe, but a run that outlives that wait is wasted.
  const runs = new FastPath(
    options.store,
    {
      everyEvent: true,
      sender: wrap(senders.runSender),
      longestSendMs,
      ackTimeoutMs,
      leaseMs: longestSendMs + ackTimeoutMs + 15_000,
      maxBatch: RUN_MAX_BATCH,
      positions,
      contracts: options.contracts,
    },
    logger,
    options.metrics,
  );
  return createActivities({
    store: options.store,
    producer: wrap(senders.sender),
    runs,
    sendWindowMs: longestSendMs,
    positions,
    logger,
    ackTimeoutMs: options.ackTimeoutMs,
    topicExists,
    compensations: options.compensations,
    contracts: options.contracts,
    metrics: options.metrics,
  });
}

/** The Temporal worker's settings: the outbox's workflows (or the prebuilt bundle), its activities, tracing and concurrency. */
function workerOptions(options: OutboxWorkerOptions, connection: NativeConnection, activities: ReturnType<typeof createActivities>): WorkerOptions {
  return {
    connection,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: OUTBOX_WORKFLOWS_PATH }),
    activities,
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivityTaskExecutions ?? 100,
    ...(options.maxConcurrentWorkflowTaskExecutions === undefined ? {} : { maxConcurrentWorkflowTaskExecutions: options.maxConcurrentWorkflowTaskExecutions }),
    ...(options.maxConcurrentWorkflowTaskPolls === undefined ? {} : { maxConcurrentWorkflowTaskPolls: options.maxConcurrentWorkflowTaskPolls }),
    interceptors: {
      activity: [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx) })],
      ...(options.workflowSpanExporter ? { workflowModules: [OTEL_WORKFLOW_INTERCEPTORS] } : {}),
    },
    ...(options.workflowSpanExporter ? { sinks: { exporter: makeWorkflowExporter(options.workflowSpanExporter, new Resource({ 'service.name': 'txoutbox-worker' })) } } : {}),
  };
}
