// workers/process/: what makes the relay and the worker processes: TXOUTBOX_* settings, the bins' main,
// health and Prometheus metrics, the SDK's logging, and the store built from the settings.
import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import type { KafkaConfig } from 'kafkajs';
import { DEFAULT_PARTITION_COUNT, MAX_PARTITION_COUNT, OutboxError, OutboxErrorCode } from '../../domain/outbox';
import { DEFAULT_PUBLISH_POLICY, type PublishPolicy } from '../../workflows/types';

/** TLS files, read at start (a missing file fails there, naming its variable). */
export interface TlsFiles {
  /** PEM of the CA that signed the server's certificate (default: the system's CAs). */
  ca?: string;
  /** PEM client certificate and key, for mutual TLS (both or neither). */
  cert?: string;
  key?: string;
}

export interface KafkaSecurity {
  /** TXOUTBOX_KAFKA_TLS=true, with TXOUTBOX_KAFKA_TLS_{CA,CERT,KEY}_FILE. */
  tls: TlsFiles | null;
  /** TXOUTBOX_KAFKA_SASL_MECHANISM (plain, scram-sha-256, scram-sha-512), _USERNAME, _PASSWORD. */
  sasl: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string } | null;
}

export interface TemporalSecurity {
  /** TXOUTBOX_TEMPORAL_TLS=true, with TXOUTBOX_TEMPORAL_TLS_{CA,CERT,KEY}_FILE (cert+key: mTLS) and _SERVER_NAME. */
  tls: (TlsFiles & { serverName?: string }) | null;
  /** TXOUTBOX_TEMPORAL_API_KEY (Temporal Cloud API keys; implies TLS). */
  apiKey: string | null;
}

/** The settings of the relay, the worker and the CLI, from `TXOUTBOX_*` environment variables. */
export interface TxoutboxConfig {
  /** TXOUTBOX_STORE: `mongodb` or `postgres`. @default "mongodb" */
  store: 'postgres' | 'mongodb';
  /** TXOUTBOX_PG_URL. @default "postgres://txoutbox:txoutbox@127.0.0.1:5432/txoutbox" */
  pgUrl: string;
  /** TXOUTBOX_PG_SCHEMA: schema of the outbox tables. @default "public" */
  pgSchema: string;
  /** TXOUTBOX_MONGODB_URI: a replica set (required when the store is mongodb). */
  /** TXOUTBOX_MONGODB_URI: a replica set (transactions and change streams need one). @default "mongodb://127.0.0.1:27017/?replicaSet=secantus&directConnection=true" (the server scripts/infra.sh starts) */
  mongodbUri: string;
  /** TXOUTBOX_MONGODB_DB. @default "txoutbox" */
  mongodbDb: string;
  /** TXOUTBOX_TEMPORAL_ADDRESS. @default "127.0.0.1:7233" */
  temporalAddress: string;
  /** TXOUTBOX_TEMPORAL_NAMESPACE. @default "default" */
  temporalNamespace: string;
  /** TXOUTBOX_TEMPORAL_UI_URL, for links. @default "http://127.0.0.1:8233" */
  temporalUiUrl: string;
  /** TXOUTBOX_TASK_QUEUE of the outbox worker. @default "txoutbox" */
  taskQueue: string;
  /** TXOUTBOX_WORKFLOW_ID_PREFIX: the relay's event workflows are `<prefix><event id>`; the CLI finds them by it. @default "outbox-" */
  workflowIdPrefix: string;
  /** TXOUTBOX_COMPENSATIONS_MODULE: path of a module whose `compensations` export maps event types to compensations (worker). @default null */
  compensationsModule: string | null;
  /** TXOUTBOX_CONTRACTS_MODULE: path of a module whose `registry` export is the service's EventRegistry: the version each type is published as (worker, relay's fast path, `txoutbox contracts`). @default null: events go out as written */
  contractsModule: string | null;
  /** TXOUTBOX_HEALTH_PORT_FILE: the relay or worker writes the health port it listens on to this file. @default null */
  healthPortFile: string | null;
  /** TXOUTBOX_RELAY_RUNS_WORKER: the relay process also runs the worker, on one shared Temporal connection. @default false */
  relayRunsWorker: boolean;
  /**
   * TXOUTBOX_EAGER_START: with TXOUTBOX_RELAY_RUNS_WORKER, start workflows eagerly (their first task,
   * which runs the first publish attempt as a local activity, comes back with the start).
   * @default TXOUTBOX_RELAY_RUNS_WORKER: one setting makes the one-process shape
   */
  eagerStart: boolean;
  /** TXOUTBOX_KAFKA_BROKERS, comma-separated host:port. @default ["127.0.0.1:9092"] */
  kafkaBrokers: string[];
  /** TXOUTBOX_KAFKA_REQUEST_TIMEOUT_MS: how long kafkajs waits for a broker's answer to one request (1000-300000). @default 30000 */
  kafkaRequestTimeoutMs: number;
  /** TXOUTBOX_HEALTH_PORT: liveness/readiness HTTP port of the relay or worker (0 = any free port). @default 0 */
  healthPort: number;
  /** TXOUTBOX_LOG_LEVEL: debug, info, warn or error. @default "info" */
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** TXOUTBOX_RELAY_NAME: the relay's checkpoint name. @default "relay" */
  relayName: string;
  /**
   * TXOUTBOX_RELAY_PARTITIONED: relays sharing a name share the outbox's partitions through leases
   * (issue 17), each reading its own. @default false
   */
  relayPartitioned: boolean;
  /** TXOUTBOX_RELAY_LEASE_MS: how long a partitioned relay's leases last unrenewed (1000-600000). @default 15000 */
  relayLeaseMs: number;
  /** TXOUTBOX_RELAY_MEMBER: a partitioned relay's id in its group. @default host, pid and random bytes */
  relayMember: string | null;
  /** TXOUTBOX_PARTITIONS: the outbox's partition count, set by its first `migrate` (fixed after). @default null (16) */
  partitions: number | null;
  /** TXOUTBOX_PUBLISH_LOCAL_ACTIVITY: publish as a local activity (`true`/`false`). @default false */
  publishLocalActivity: boolean;
  /**
   * How the relay's workflows publish: TXOUTBOX_PUBLISH_MAX_ATTEMPTS (0: no limit), _TIMEOUT_MS,
   * _RETRY_INITIAL_MS, _RETRY_MAX_MS, TXOUTBOX_PUBLISH_FIRST_ATTEMPT_LOCAL (default true) and
   * TXOUTBOX_DEAD_LETTER_TOPIC. @default DEFAULT_PUBLISH_POLICY
   */
  publishPolicy: PublishPolicy;
  /** TXOUTBOX_RELAY_START_CONCURRENCY: most workflow starts in flight. @default 16 */
  relayStartConcurrency: number;
  /**
   * TXOUTBOX_SEQUENCER_BUFFER: most events a key's sequencer keeps behind the one it holds (10-5000);
   * the rest wait in the store for a sweep. Taken by sequencers the relay starts. @default 500
   */
  sequencerBufferLimit: number;
  /** TXOUTBOX_SEQUENCER_RUN_LIMIT: most events of a key its sequencer publishes in one run (1-1000; 1: no runs). @default 100 */
  sequencerRunLimit: number;
  /**
   * TXOUTBOX_RELAY_BATCH_SIZE: most events the relay reads from the feed per batch. @default 100, or
   * 500 with the fast path on (it drains a backlog faster: BENCHMARKS.md, issue 16)
   */
  relayBatchSize: number;
  /** TXOUTBOX_RELAY_CHECKPOINT_EVERY_MS: shortest time between two saves of the feed's position while busy (0-60000; 0: every batch). @default 1000 */
  relayCheckpointEveryMs: number;
  /** TXOUTBOX_WORKER_WORKFLOW_TASKS: concurrent workflow tasks. @default 40 (the SDK's) */
  workerWorkflowTasks: number;
  /** TXOUTBOX_WORKER_WORKFLOW_POLLS: concurrent workflow task polls. @default 10 (the SDK's, capped at the tasks) */
  workerWorkflowPolls: number;
  /** TXOUTBOX_WORKER_ACTIVITY_TASKS: concurrent activities. @default 100 */
  workerActivityTasks: number;
  /** TXOUTBOX_PRODUCER_LINGER_MS: how long the worker's first queued publish waits for others to share its request (unset: 0, no wait; what queues behind a request in flight goes in the next one). @default null */
  producerLingerMs: number | null;
  kafkaSecurity: KafkaSecurity;
  temporalSecurity: TemporalSecurity;
  /** TXOUTBOX_FAST_PATH_TOPICS / _TYPES: events the relay publishes itself (comma-separated); none: off. */
  fastPath: { topics: string[]; types: string[] } | null;
}

/** The MongoDB server scripts/infra.sh starts (one node, connected to directly; see that script). */
export const DEFAULT_MONGODB_URI = 'mongodb://127.0.0.1:27017/?replicaSet=secantus&directConnection=true';

export { CONFIG_TEMPLATE } from './config-template';

const HOST_PORT = /^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/;

function bad(variable: string, message: string): OutboxError {
  return new OutboxError(OutboxErrorCode.invalidConfig, `${variable} ${message}`);
}

/** Reads and checks the environment; throws naming the first bad variable (in the order below). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): TxoutboxConfig {
  const r = envReader(env);
  const { store, pgUrl, pgSchema, mongodbUri, temporalAddress, kafkaBrokers, healthPort, logLevel } = readServers(r);
  const relayRunsWorker = r.flag('TXOUTBOX_RELAY_RUNS_WORKER');
  const workerWorkflowTasks = r.integer('TXOUTBOX_WORKER_WORKFLOW_TASKS', 40, 2);
  const { kafkaTls, mechanism, saslUser, saslPassword, apiKey, temporalTls, serverName } = readSecurity(r, env);
  const { fastTopics, fastTypes, lingerSet, workflowIdPrefix, publishPolicy } = readPublishing(r);
  return {
    relayStartConcurrency: r.integer('TXOUTBOX_RELAY_START_CONCURRENCY', 16, 1),
    sequencerBufferLimit: r.integer('TXOUTBOX_SEQUENCER_BUFFER', 500, 10, 5_000),
    sequencerRunLimit: r.integer('TXOUTBOX_SEQUENCER_RUN_LIMIT', 100, 1, 1_000),
    relayBatchSize: r.integer('TXOUTBOX_RELAY_BATCH_SIZE', fastTopics.length + fastTypes.length === 0 ? 100 : 500, 1, 500),
    relayCheckpointEveryMs: r.integer('TXOUTBOX_RELAY_CHECKPOINT_EVERY_MS', 1000, 0, 60_000),
    workerWorkflowTasks,
    workerWorkflowPolls: r.integer('TXOUTBOX_WORKER_WORKFLOW_POLLS', Math.min(10, workerWorkflowTasks), 2, workerWorkflowTasks),
    workerActivityTasks: r.integer('TXOUTBOX_WORKER_ACTIVITY_TASKS', 100, 1),
    kafkaRequestTimeoutMs: r.integer('TXOUTBOX_KAFKA_REQUEST_TIMEOUT_MS', 30_000, 1_000, 300_000),
    producerLingerMs: lingerSet ? r.integer('TXOUTBOX_PRODUCER_LINGER_MS', 0, 0, 1000) : null,
    fastPath: fastTopics.length + fastTypes.length === 0 ? null : { topics: fastTopics, types: fastTypes },
    kafkaSecurity: {
      tls: kafkaTls ? r.tlsFiles('TXOUTBOX_KAFKA_TLS') : null,
      sasl: mechanism === undefined ? null : { mechanism, username: saslUser ?? '', password: saslPassword ?? '' },
    },
    temporalSecurity: {
      tls: temporalTls ? { ...r.tlsFiles('TXOUTBOX_TEMPORAL_TLS'), ...(serverName === undefined ? {} : { serverName }) } : null,
      apiKey,
    },
    publishLocalActivity: r.flag('TXOUTBOX_PUBLISH_LOCAL_ACTIVITY'),
    publishPolicy,
    healthPort,
    logLevel,
    relayName: r.get('TXOUTBOX_RELAY_NAME') ?? 'relay',
    relayPartitioned: r.flag('TXOUTBOX_RELAY_PARTITIONED'),
    relayLeaseMs: r.integer('TXOUTBOX_RELAY_LEASE_MS', 15_000, 1_000, 600_000),
    relayMember: r.get('TXOUTBOX_RELAY_MEMBER') ?? null,
    partitions: r.get('TXOUTBOX_PARTITIONS') === undefined ? null : r.integer('TXOUTBOX_PARTITIONS', DEFAULT_PARTITION_COUNT, 1, MAX_PARTITION_COUNT),
    store,
    pgUrl,
    pgSchema,
    mongodbUri,
    mongodbDb: r.get('TXOUTBOX_MONGODB_DB') ?? 'txoutbox',
    temporalAddress,
    temporalNamespace: r.get('TXOUTBOX_TEMPORAL_NAMESPACE') ?? 'default',
    temporalUiUrl: (r.get('TXOUTBOX_TEMPORAL_UI_URL') ?? 'http://127.0.0.1:8233').replace(/\/$/, ''),
    taskQueue: r.get('TXOUTBOX_TASK_QUEUE') ?? 'txoutbox',
    workflowIdPrefix,
    compensationsModule: r.get('TXOUTBOX_COMPENSATIONS_MODULE') ?? null,
    contractsModule: r.get('TXOUTBOX_CONTRACTS_MODULE') ?? null,
    healthPortFile: r.get('TXOUTBOX_HEALTH_PORT_FILE') ?? null,
    relayRunsWorker,
    eagerStart: r.flag('TXOUTBOX_EAGER_START', relayRunsWorker),
    kafkaBrokers,
  };
}


/** The environment's variables as typed values, each checked with the variable's name in its error. */
function envReader(env: NodeJS.ProcessEnv) {
  const get = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const integer = (name: string, fallback: number, min: number, max = 100_000): number => {
    const text = get(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) throw bad(name, `must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
    return value;
  };
  const flag = (name: string, fallback = false): boolean => {
    const text = get(name) ?? String(fallback);
    if (text !== 'true' && text !== 'false') throw bad(name, `must be true or false, got ${JSON.stringify(text)}`);
    return text === 'true';
  };
  const file = (name: string): string | undefined => {
    const path = get(name);
    if (path === undefined) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw bad(name, `names a file that cannot be read (${path}): ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const tlsFiles = (prefix: string): TlsFiles => {
    const files = { ca: file(`${prefix}_CA_FILE`), cert: file(`${prefix}_CERT_FILE`), key: file(`${prefix}_KEY_FILE`) };
    if ((files.cert === undefined) !== (files.key === undefined)) throw bad(`${prefix}_CERT_FILE`, `and ${prefix}_KEY_FILE go together (mutual TLS needs both)`);
    return Object.fromEntries(Object.entries(files).filter(([, v]) => v !== undefined));
  };
  const tlsFilesGivenWithoutTls = (prefix: string): void => {
    for (const suffix of ['_CA_FILE', '_CERT_FILE', '_KEY_FILE', '_SERVER_NAME']) {
      if (get(`${prefix}${suffix}`) !== undefined) throw bad(`${prefix}${suffix}`, `is set but ${prefix} is not true`);
    }
  };
  const list = (name: string, pattern: RegExp): string[] => {
    const items = (get(name) ?? '').split(',').map((t) => t.trim()).filter((t) => t !== '');
    for (const item of items) if (!pattern.test(item)) throw bad(name, `has ${JSON.stringify(item)}, which is not a valid name`);
    return items;
  };
  return { get, integer, flag, tlsFiles, tlsFilesGivenWithoutTls, list };
}

type EnvReader = ReturnType<typeof envReader>;

/** The store, the servers' addresses, the health port, the log level and the publishing mode. */
function readServers(r: EnvReader) {
  const store = r.get('TXOUTBOX_STORE') ?? 'mongodb';
  if (store !== 'postgres' && store !== 'mongodb') throw bad('TXOUTBOX_STORE', `must be "mongodb" or "postgres", got ${JSON.stringify(store)}`);
  const pgUrl = r.get('TXOUTBOX_PG_URL') ?? 'postgres://txoutbox:txoutbox@127.0.0.1:5432/txoutbox';
  if (!/^postgres(ql)?:\/\//.test(pgUrl)) throw bad('TXOUTBOX_PG_URL', 'must be a postgres:// URL');
  const pgSchema = r.get('TXOUTBOX_PG_SCHEMA') ?? 'public';
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(pgSchema)) throw bad('TXOUTBOX_PG_SCHEMA', `must be a lower-case SQL identifier, got ${JSON.stringify(pgSchema)}`);
  const mongodbUri = r.get('TXOUTBOX_MONGODB_URI') ?? DEFAULT_MONGODB_URI;
  if (!/^mongodb(\+srv)?:\/\//.test(mongodbUri)) throw bad('TXOUTBOX_MONGODB_URI', 'must be a mongodb:// URL');
  const temporalAddress = r.get('TXOUTBOX_TEMPORAL_ADDRESS') ?? '127.0.0.1:7233';
  if (!HOST_PORT.test(temporalAddress)) throw bad('TXOUTBOX_TEMPORAL_ADDRESS', `must be host:port, got ${JSON.stringify(temporalAddress)}`);
  const kafkaBrokers = (r.get('TXOUTBOX_KAFKA_BROKERS') ?? '127.0.0.1:9092').split(',').map((b) => b.trim());
  for (const broker of kafkaBrokers) {
    if (!HOST_PORT.test(broker)) throw bad('TXOUTBOX_KAFKA_BROKERS', `must be comma-separated host:port, got ${JSON.stringify(broker)}`);
  }
  const healthPortText = r.get('TXOUTBOX_HEALTH_PORT') ?? '0';
  const healthPort = Number(healthPortText);
  if (!/^\d{1,5}$/.test(healthPortText) || healthPort > 65535) throw bad('TXOUTBOX_HEALTH_PORT', `must be a port number (0-65535), got ${JSON.stringify(healthPortText)}`);
  const logLevel = r.get('TXOUTBOX_LOG_LEVEL') ?? 'info';
  if (logLevel !== 'debug' && logLevel !== 'info' && logLevel !== 'warn' && logLevel !== 'error') {
    throw bad('TXOUTBOX_LOG_LEVEL', `must be debug, info, warn or error, got ${JSON.stringify(logLevel)}`);
  }
  return { store: store as TxoutboxConfig['store'], pgUrl, pgSchema, mongodbUri, temporalAddress, kafkaBrokers, healthPort, logLevel: logLevel as TxoutboxConfig['logLevel'] };
}

/** TLS and SASL to Kafka, TLS and an API key to Temporal: each setting checked against the others. */
function readSecurity(r: EnvReader, env: NodeJS.ProcessEnv) {
  const kafkaTls = r.flag('TXOUTBOX_KAFKA_TLS');
  if (!kafkaTls) r.tlsFilesGivenWithoutTls('TXOUTBOX_KAFKA_TLS');
  const mechanism = r.get('TXOUTBOX_KAFKA_SASL_MECHANISM');
  if (mechanism !== undefined && mechanism !== 'plain' && mechanism !== 'scram-sha-256' && mechanism !== 'scram-sha-512') {
    throw bad('TXOUTBOX_KAFKA_SASL_MECHANISM', `must be plain, scram-sha-256 or scram-sha-512, got ${JSON.stringify(mechanism)}`);
  }
  const saslUser = r.get('TXOUTBOX_KAFKA_SASL_USERNAME');
  const saslPassword = env.TXOUTBOX_KAFKA_SASL_PASSWORD; // not trimmed: a password may end in a space
  if (mechanism !== undefined && (saslUser === undefined || !saslPassword)) {
    throw bad('TXOUTBOX_KAFKA_SASL_MECHANISM', 'needs TXOUTBOX_KAFKA_SASL_USERNAME and TXOUTBOX_KAFKA_SASL_PASSWORD');
  }
  if (mechanism === undefined && (saslUser !== undefined || saslPassword)) throw bad('TXOUTBOX_KAFKA_SASL_USERNAME', 'is set but TXOUTBOX_KAFKA_SASL_MECHANISM is not');
  const apiKey = r.get('TXOUTBOX_TEMPORAL_API_KEY') ?? null;
  const temporalTls = r.flag('TXOUTBOX_TEMPORAL_TLS') || apiKey !== null;
  if (!temporalTls) r.tlsFilesGivenWithoutTls('TXOUTBOX_TEMPORAL_TLS');
  const serverName = r.get('TXOUTBOX_TEMPORAL_TLS_SERVER_NAME');
  return { kafkaTls, mechanism: mechanism as NonNullable<TxoutboxConfig['kafkaSecurity']['sasl']>['mechanism'] | undefined, saslUser, saslPassword, apiKey, temporalTls, serverName };
}

/** What the relay publishes itself, the producer's linger, workflow ids, and the publish policy. */
function readPublishing(r: EnvReader) {
  const fastTopics = r.list('TXOUTBOX_FAST_PATH_TOPICS', /^[A-Za-z0-9._-]{1,249}$/);
  const fastTypes = r.list('TXOUTBOX_FAST_PATH_TYPES', /^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/);
  const lingerSet = r.get('TXOUTBOX_PRODUCER_LINGER_MS') !== undefined;
  const deadLetterTopic = r.get('TXOUTBOX_DEAD_LETTER_TOPIC');
  if (deadLetterTopic !== undefined && !/^[A-Za-z0-9._-]{1,249}$/.test(deadLetterTopic)) {
    throw bad('TXOUTBOX_DEAD_LETTER_TOPIC', `must be a Kafka topic name, got ${JSON.stringify(deadLetterTopic)}`);
  }
  // Workflow ids are any string up to 1000 bytes; the prefix is kept to names an operator can type.
  const workflowIdPrefix = r.get('TXOUTBOX_WORKFLOW_ID_PREFIX') ?? 'outbox-';
  if (!/^[A-Za-z0-9._:-]{1,100}$/.test(workflowIdPrefix)) {
    throw bad('TXOUTBOX_WORKFLOW_ID_PREFIX', `may hold only letters, digits and ._:- (1 to 100), got ${JSON.stringify(workflowIdPrefix)}`);
  }
  const initialIntervalMs = r.integer('TXOUTBOX_PUBLISH_RETRY_INITIAL_MS', DEFAULT_PUBLISH_POLICY.initialIntervalMs, 10, 3_600_000);
  const publishPolicy: PublishPolicy = {
    ...DEFAULT_PUBLISH_POLICY,
    maximumAttempts: r.integer('TXOUTBOX_PUBLISH_MAX_ATTEMPTS', DEFAULT_PUBLISH_POLICY.maximumAttempts, 0, 1_000),
    startToCloseTimeoutMs: r.integer('TXOUTBOX_PUBLISH_TIMEOUT_MS', DEFAULT_PUBLISH_POLICY.startToCloseTimeoutMs, 1_000, 3_600_000),
    initialIntervalMs,
    maximumIntervalMs: r.integer('TXOUTBOX_PUBLISH_RETRY_MAX_MS', Math.max(DEFAULT_PUBLISH_POLICY.maximumIntervalMs, initialIntervalMs), initialIntervalMs, 86_400_000),
    firstAttemptLocal: r.flag('TXOUTBOX_PUBLISH_FIRST_ATTEMPT_LOCAL', true),
    ...(deadLetterTopic === undefined ? {} : { deadLetterTopic }),
  };
  return { fastTopics, fastTypes, lingerSet, workflowIdPrefix, publishPolicy };
}

const REDACTED = '[redacted]';

/** A URL with its password replaced (connection strings are logged and printed only this way). */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z+]+:\/\/[^:/@]+:)[^@]*@/i, `$1${REDACTED}@`);
}

/** The effective configuration with every secret replaced, for `txoutbox config --effective` and logs. */
export function redactConfig(config: TxoutboxConfig): Record<string, unknown> {
  const pem = (files: TlsFiles | null): Record<string, string> | null =>
    files === null ? null : Object.fromEntries(Object.entries(files).map(([k, v]) => [k, k === 'serverName' ? String(v) : k === 'key' ? REDACTED : `PEM, ${String(v).length} bytes`]));
  return {
    ...config,
    pgUrl: redactUrl(config.pgUrl),
    mongodbUri: redactUrl(config.mongodbUri),
    kafkaSecurity: {
      tls: pem(config.kafkaSecurity.tls),
      sasl: config.kafkaSecurity.sasl === null ? null : { ...config.kafkaSecurity.sasl, password: REDACTED },
    },
    temporalSecurity: {
      tls: pem(config.temporalSecurity.tls),
      apiKey: config.temporalSecurity.apiKey === null ? null : REDACTED,
    },
  };
}

/** kafkajs client settings: brokers, TLS and SASL from the configuration. */
export function kafkaClientConfig(config: TxoutboxConfig, clientId: string): KafkaConfig {
  const { tls, sasl } = config.kafkaSecurity;
  return {
    clientId,
    brokers: config.kafkaBrokers,
    requestTimeout: config.kafkaRequestTimeoutMs,
    ...(tls === null ? {} : { ssl: Object.keys(tls).length === 0 ? true : { ...tls, rejectUnauthorized: true } }),
    ...(sasl === null ? {} : { sasl: sasl.mechanism === 'plain' ? { mechanism: 'plain', username: sasl.username, password: sasl.password } : sasl }),
  } as KafkaConfig;
}

/** Temporal connection settings (client and worker): address, TLS or mTLS, API key. */
export function temporalConnectionOptions(config: TxoutboxConfig): { address: string; tls?: TLSConfig | boolean; apiKey?: string } {
  const { tls, apiKey } = config.temporalSecurity;
  const buffer = (pem: string | undefined): Buffer | undefined => (pem === undefined ? undefined : Buffer.from(pem));
  return {
    address: config.temporalAddress,
    ...(tls === null
      ? {}
      : {
          tls: {
            ...(tls.serverName === undefined ? {} : { serverNameOverride: tls.serverName }),
            ...(tls.ca === undefined ? {} : { serverRootCACertificate: buffer(tls.ca) }),
            ...(tls.cert === undefined || tls.key === undefined ? {} : { clientCertPair: { crt: Buffer.from(tls.cert), key: Buffer.from(tls.key) } }),
          },
        }),
    ...(apiKey === null ? {} : { apiKey }),
  };
}
