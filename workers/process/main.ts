/**
 * The relay and the worker as processes: configured by TXOUTBOX_* (workers/process/config.ts, failing at
 * start with the variable's name), with liveness `/healthz`, readiness `/readyz` and Prometheus
 * `/metrics` over HTTP, and
 * SIGTERM/SIGINT draining in-flight work (the relay saves its checkpoint) before exit.
 *
 *   txoutbox-relay     txoutbox-worker     (bins of the package: workers/bin, compiled to dist/)
 */
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry/lib/client';
import { DefaultLogger, makeTelemetryFilterString, NativeConnection, Runtime } from '@temporalio/worker';
import { Kafka, logLevel as kafkaLogLevel } from 'kafkajs';
import { createJsonLogger, OutboxError, type EventRegistry, type Logger } from '../../domain/outbox';
import { loadCompensations, loadContracts } from './modules';
import type { Compensation } from '../../activities';
import { collectDefaultMetrics } from 'prom-client';
import { kafkaClientConfig, loadConfig, temporalConnectionOptions, type TxoutboxConfig } from './config';
import { observePartitions, OutboxMetrics } from './metrics';
import { cachedPartitions } from '../kafka/coalescing-producer';
import { FAST_PATH_REQUEST_TIMEOUT_MS, FastPath } from '../relay/fast-path';
import { createOutboxProducer } from '../kafka/producer';
import { createKafkaPositionReader } from '../kafka/position-reader';
import { createRelay } from '../relay/relay';
import { withSettingsFile } from './config-file';
import { MissingPackage, Unreachable, reach, storeServer } from './reach';
import { storeFromConfig } from './store-from-config';
import { sdkLogFunction } from './sdk-logging';
import { startOutboxWorker } from '../worker/worker';

export type Role = 'relay' | 'worker';

interface Running {
  shutdown(): Promise<void>;
}

/** Starts `role`; resolves with its exit code once it was stopped by a signal (or failed). */
export async function main(role: Role, env: NodeJS.ProcessEnv = process.env, configFile?: string): Promise<number> {
  let config: TxoutboxConfig;
  let compensations: Record<string, Compensation> | undefined;
  let contracts: EventRegistry | undefined;
  try {
    config = loadConfig(withSettingsFile(env, configFile));
    if ((role === 'worker' || config.relayRunsWorker) && config.compensationsModule !== null) compensations = loadCompensations(config.compensationsModule);
    if (config.contractsModule !== null) contracts = loadContracts(config.contractsModule);
  } catch (err) {
    process.stderr.write(`txoutbox ${role}: ${err instanceof OutboxError ? err.message : String(err)}\n`);
    return 2;
  }
  const logger = createJsonLogger(config.logLevel);
  installSdkRuntime(config, logger);
  let ready = false;
  const metrics = new OutboxMetrics();
  collectDefaultMetrics({ register: metrics.registry, prefix: `txoutbox_${role}_` });
  const health = await serveHealth(config.healthPort, () => ready, metrics);
  const healthPort = (health.address() as AddressInfo).port;
  logger.info('health endpoints listening', { role, port: healthPort });
  // For scripts that let the process choose its port (TXOUTBOX_HEALTH_PORT=0).
  if (config.healthPortFile !== null) writeFileSync(config.healthPortFile, `${healthPort}\n`);

  const closers: Closers = { store: async () => undefined, more: async () => undefined };
  let running: Running;
  try {
    running = await startRole(role, { config, logger, metrics, compensations, contracts }, closers);
  } catch (err) {
    const message = err instanceof Unreachable || err instanceof MissingPackage ? err.message : `failed to start: ${err instanceof Error ? err.message : String(err)}`;
    process.stderr.write(`txoutbox ${role}: ${message}\n`);
    logger.error(`${role} failed to start`, { error: err });
    await closers.more().catch(() => undefined);
    await closers.store().catch(() => undefined);
    health.close();
    return err instanceof MissingPackage ? 2 : 1;
  }
  ready = true;
  logger.info(`${role} started`, { taskQueue: config.taskQueue, store: config.store });

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  ready = false;
  logger.info(`${role} stopping: draining in-flight work`, { signal });
  await running.shutdown();
  await closers.more();
  await closers.store();
  health.close();
  logger.info(`${role} stopped`, { signal });
  return 0;
}

/** The SDK's records, its Rust core's included, go through the process's JSON logger (one line each). */
function installSdkRuntime(config: TxoutboxConfig, logger: Logger): void {
  const sdkLevel = config.logLevel === 'debug' ? 'DEBUG' : 'WARN';
  Runtime.install({
    logger: new DefaultLogger(sdkLevel, sdkLogFunction(logger)),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: sdkLevel, other: 'ERROR' }), forward: {} } },
  });
}

/** What the process's parts share. */
interface ProcessDeps {
  config: TxoutboxConfig;
  logger: Logger;
  metrics: OutboxMetrics;
  compensations: Record<string, Compensation> | undefined;
  /** The service's event contracts (TXOUTBOX_CONTRACTS_MODULE): the version each type is published as. */
  contracts: EventRegistry | undefined;
}

type Store = Awaited<ReturnType<typeof storeFromConfig>>['store'];

/** What the process closes after its role stopped (or failed to start): the store, and the rest it opened. */
interface Closers {
  store: () => Promise<void>;
  more: () => Promise<void>;
}

/**
 * Reaches every server once, with a bounded wait, before the process says it is ready: an
 * unreachable one ends the start with its name, address and variable instead of retrying blind.
 */
async function startRole(role: Role, deps: ProcessDeps, closers: Closers): Promise<Running> {
  const { config, logger, metrics } = deps;
  const { what, variable } = storeServer(config);
  const { store, close } = await reach(what, variable, () => storeFromConfig(config, logger, (command) => metrics.storeRoundTrips.inc({ command })));
  closers.store = close;
  // A store never set up would fail every read (or, on MongoDB, take events where nothing reads them).
  await store.checkSetUp();
  return role === 'relay' ? startRelayRole(deps, store, closers) : startWorkerRole(deps, store);
}

/** The worker of this process: the worker role, or the relay's own (TXOUTBOX_RELAY_RUNS_WORKER) on the relay's connection. */
async function startWorkerRole({ config, logger, metrics, compensations, contracts }: ProcessDeps, store: Store, connection?: NativeConnection): Promise<Running> {
  const temporal = temporalConnectionOptions(config);
  const kafka = new Kafka({ ...kafkaClientConfig(config, 'txoutbox-worker'), logLevel: kafkaLogLevel.NOTHING });
  await reach(`Kafka at ${config.kafkaBrokers.join(',')}`, 'TXOUTBOX_KAFKA_BROKERS', async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.disconnect();
  });
  if (connection === undefined) {
    await reach(`Temporal at ${temporal.address}`, 'TXOUTBOX_TEMPORAL_ADDRESS', async () => (await Connection.connect({ ...temporal, connectTimeout: 10_000 })).close());
  }
  return startOutboxWorker({
    temporalAddress: temporal.address,
    temporalTls: temporal.tls,
    temporalApiKey: temporal.apiKey,
    ...(connection === undefined ? {} : { connection }),
    namespace: config.temporalNamespace,
    taskQueue: config.taskQueue,
    store,
    kafka,
    logger,
    metrics,
    compensations,
    contracts,
    maxConcurrentWorkflowTaskExecutions: config.workerWorkflowTasks,
    maxConcurrentWorkflowTaskPolls: config.workerWorkflowPolls,
    maxConcurrentActivityTaskExecutions: config.workerActivityTasks,
    ...(config.producerLingerMs === null ? {} : { coalesce: { lingerMs: config.producerLingerMs } }),
    kafkaRequestTimeoutMs: config.kafkaRequestTimeoutMs,
  });
}

/** The relay, with its fast path when configured and its own worker when it runs one. */
async function startRelayRole(deps: ProcessDeps, store: Store, closers: Closers): Promise<Running> {
  const { config, logger, metrics } = deps;
  const temporal = temporalConnectionOptions(config);
  // With its own worker, the relay's client shares the worker's NativeConnection, so the server
  // can hand each new workflow's first task back with the start (eager start).
  const native = config.relayRunsWorker ? await reach(`Temporal at ${temporal.address}`, 'TXOUTBOX_TEMPORAL_ADDRESS', () => NativeConnection.connect(temporal)) : undefined;
  const connection = native ?? (await reach(`Temporal at ${temporal.address}`, 'TXOUTBOX_TEMPORAL_ADDRESS', () => Connection.connect({ ...temporal, connectTimeout: 10_000 })));
  closers.more = () => connection.close();
  const client = new Client({
    connection,
    namespace: config.temporalNamespace,
    interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
  });
  const fastPath = config.fastPath === null ? undefined : await startFastPath(deps, config.fastPath, store, closers);
  const relay = createRelay({
    fastPath,
    store,
    workflowClient: client.workflow,
    taskQueue: config.taskQueue,
    workflowIdPrefix: config.workflowIdPrefix,
    name: config.relayName,
    logger,
    metrics,
    publishPolicy: { ...config.publishPolicy, localActivity: config.publishLocalActivity },
    startConcurrency: config.relayStartConcurrency,
    sequencerBufferLimit: config.sequencerBufferLimit,
    sequencerRunLimit: config.sequencerRunLimit,
    batchSize: config.relayBatchSize,
    checkpointEveryMs: config.relayCheckpointEveryMs,
    eagerStart: native !== undefined && config.eagerStart,
    partitions: config.relayPartitioned ? { leaseMs: config.relayLeaseMs, ...(config.relayMember === null ? {} : { member: config.relayMember }) } : undefined,
  });
  metrics.observeStore(store);
  if (relay.ownership !== undefined) observePartitions(metrics, relay.ownership, store, config.relayName);
  relay.on('checkpoint', ({ events }) => events > 0 && logger.debug('checkpoint saved', { events }));
  // Its worker first, so the first eager start has a worker to take its task.
  const worker = native === undefined ? undefined : await startWorkerRole(deps, store, native);
  const relayRunning = await relay.start().catch(async (err: unknown) => {
    await worker?.shutdown();
    throw err;
  });
  return {
    shutdown: async () => {
      await relayRunning.shutdown();
      await worker?.shutdown();
    },
  };
}

/**
 * The relay's fast path: sends bounded below the claim's lease (see FastPathOptions.leaseMs), one
 * kafkajs retry (a failure goes to a workflow, whose retries are Temporal's) and a 15 s request timeout.
 */
async function startFastPath({ config, logger, metrics, contracts }: ProcessDeps, settings: NonNullable<TxoutboxConfig['fastPath']>, store: Store, closers: Closers): Promise<FastPath> {
  const kafka = new Kafka({ ...kafkaClientConfig(config, 'txoutbox-relay'), logLevel: kafkaLogLevel.NOTHING, requestTimeout: FAST_PATH_REQUEST_TIMEOUT_MS });
  const producer = createOutboxProducer(kafka, { retries: 1 });
  const admin = kafka.admin();
  await reach(`Kafka at ${config.kafkaBrokers.join(',')}`, 'TXOUTBOX_KAFKA_BROKERS', async () => {
    await producer.connect();
    await admin.connect();
  });
  const closeTemporal = closers.more;
  closers.more = async () => {
    await closeTemporal();
    await producer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  };
  const fastPath = new FastPath(
    store,
    {
      ...settings,
      producer,
      partitionsOf: cachedPartitions(async (topic) => (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions ?? []),
      positions: createKafkaPositionReader(kafka),
      contracts,
    },
    logger,
    metrics,
  );
  logger.info('fast path on', settings);
  return fastPath;
}

/** `/healthz`: the process answers. `/readyz`: started and not stopping (200) or not (503). `/metrics`: Prometheus. */
function serveHealth(port: number, isReady: () => boolean, metrics: OutboxMetrics): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const ready = isReady();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

export function runMain(role: Role, configFile?: string): void {
  main(role, process.env, configFile).then(
    (code) => process.exit(code),
    (err: unknown) => {
      const logger: Logger = createJsonLogger('error');
      logger.error(`${role} crashed`, { error: err });
      process.exit(1);
    },
  );
}
