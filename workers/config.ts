import { OutboxError, OutboxErrorCode } from '../domain/outbox';

/** The settings of the relay, the worker and the CLI, from `TXOUTBOX_*` environment variables. */
export interface TxoutboxConfig {
  /** TXOUTBOX_STORE: `postgres` or `mongodb`. @default "postgres" */
  store: 'postgres' | 'mongodb';
  /** TXOUTBOX_PG_URL. @default "postgres://txoutbox:txoutbox@127.0.0.1:5432/txoutbox" */
  pgUrl: string;
  /** TXOUTBOX_PG_SCHEMA: schema of the outbox tables. @default "public" */
  pgSchema: string;
  /** TXOUTBOX_MONGODB_URI: a replica set (required when the store is mongodb). */
  mongodbUri: string | null;
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
  /** TXOUTBOX_KAFKA_BROKERS, comma-separated host:port. @default ["127.0.0.1:9092"] */
  kafkaBrokers: string[];
  /** TXOUTBOX_HEALTH_PORT: liveness/readiness HTTP port of the relay or worker (0 = any free port). @default 0 */
  healthPort: number;
  /** TXOUTBOX_LOG_LEVEL: debug, info, warn or error. @default "info" */
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** TXOUTBOX_RELAY_NAME: the relay's checkpoint name. @default "relay" */
  relayName: string;
  /** TXOUTBOX_PUBLISH_LOCAL_ACTIVITY: publish as a local activity (`true`/`false`). @default false */
  publishLocalActivity: boolean;
  /** TXOUTBOX_RELAY_START_CONCURRENCY: most workflow starts in flight. @default 16 */
  relayStartConcurrency: number;
  /** TXOUTBOX_WORKER_WORKFLOW_TASKS: concurrent workflow tasks. @default 40 (the SDK's) */
  workerWorkflowTasks: number;
  /** TXOUTBOX_WORKER_WORKFLOW_POLLS: concurrent workflow task polls. @default 10 (the SDK's, capped at the tasks) */
  workerWorkflowPolls: number;
  /** TXOUTBOX_WORKER_ACTIVITY_TASKS: concurrent activities. @default 100 */
  workerActivityTasks: number;
  /** TXOUTBOX_PRODUCER_LINGER_MS: coalesce concurrent publishes into batches, waiting at most this long (unset: one request per publish). @default null */
  producerLingerMs: number | null;
}

/** Every variable, with its default: printed by `txoutbox config`. */
export const CONFIG_TEMPLATE = `# txoutbox configuration (environment variables)
TXOUTBOX_STORE=postgres                 # postgres | mongodb
TXOUTBOX_PG_URL=postgres://txoutbox:txoutbox@127.0.0.1:5432/txoutbox
TXOUTBOX_PG_SCHEMA=public
TXOUTBOX_MONGODB_URI=                   # mongodb://host1,host2/?replicaSet=rs0 (store = mongodb)
TXOUTBOX_MONGODB_DB=txoutbox
TXOUTBOX_TEMPORAL_ADDRESS=127.0.0.1:7233
TXOUTBOX_TEMPORAL_NAMESPACE=default
TXOUTBOX_TEMPORAL_UI_URL=http://127.0.0.1:8233
TXOUTBOX_TASK_QUEUE=txoutbox
TXOUTBOX_KAFKA_BROKERS=127.0.0.1:9092
TXOUTBOX_HEALTH_PORT=0                  # /healthz and /readyz of the relay or worker (0: any free port)
TXOUTBOX_LOG_LEVEL=info                 # debug | info | warn | error
TXOUTBOX_RELAY_NAME=relay               # checkpoint name; relays sharing it share a position
TXOUTBOX_PUBLISH_LOCAL_ACTIVITY=false   # publish as a local activity (fewer history events)
TXOUTBOX_RELAY_START_CONCURRENCY=16     # relay: workflow starts in flight
TXOUTBOX_WORKER_WORKFLOW_TASKS=40       # worker: concurrent workflow tasks
TXOUTBOX_WORKER_WORKFLOW_POLLS=10       # worker: concurrent workflow task polls (at most the tasks)
TXOUTBOX_WORKER_ACTIVITY_TASKS=100      # worker: concurrent activities
TXOUTBOX_PRODUCER_LINGER_MS=            # worker: coalesce publishes into batches within this window (unset: off)
`;

const HOST_PORT = /^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/;

function bad(variable: string, message: string): OutboxError {
  return new OutboxError(OutboxErrorCode.invalidConfig, `${variable} ${message}`);
}

/** Reads and checks the environment; throws naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): TxoutboxConfig {
  const get = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const store = get('TXOUTBOX_STORE') ?? 'postgres';
  if (store !== 'postgres' && store !== 'mongodb') throw bad('TXOUTBOX_STORE', `must be "postgres" or "mongodb", got ${JSON.stringify(store)}`);
  const pgUrl = get('TXOUTBOX_PG_URL') ?? 'postgres://txoutbox:txoutbox@127.0.0.1:5432/txoutbox';
  if (!/^postgres(ql)?:\/\//.test(pgUrl)) throw bad('TXOUTBOX_PG_URL', 'must be a postgres:// URL');
  const pgSchema = get('TXOUTBOX_PG_SCHEMA') ?? 'public';
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(pgSchema)) throw bad('TXOUTBOX_PG_SCHEMA', `must be a lower-case SQL identifier, got ${JSON.stringify(pgSchema)}`);
  const mongodbUri = get('TXOUTBOX_MONGODB_URI') ?? null;
  if (store === 'mongodb' && mongodbUri === null) throw bad('TXOUTBOX_MONGODB_URI', 'is required when TXOUTBOX_STORE=mongodb');
  if (mongodbUri !== null && !/^mongodb(\+srv)?:\/\//.test(mongodbUri)) throw bad('TXOUTBOX_MONGODB_URI', 'must be a mongodb:// URL');
  const temporalAddress = get('TXOUTBOX_TEMPORAL_ADDRESS') ?? '127.0.0.1:7233';
  if (!HOST_PORT.test(temporalAddress)) throw bad('TXOUTBOX_TEMPORAL_ADDRESS', `must be host:port, got ${JSON.stringify(temporalAddress)}`);
  const kafkaBrokers = (get('TXOUTBOX_KAFKA_BROKERS') ?? '127.0.0.1:9092').split(',').map((b) => b.trim());
  for (const broker of kafkaBrokers) {
    if (!HOST_PORT.test(broker)) throw bad('TXOUTBOX_KAFKA_BROKERS', `must be comma-separated host:port, got ${JSON.stringify(broker)}`);
  }
  const healthPortText = get('TXOUTBOX_HEALTH_PORT') ?? '0';
  const healthPort = Number(healthPortText);
  if (!/^\d{1,5}$/.test(healthPortText) || healthPort > 65535) throw bad('TXOUTBOX_HEALTH_PORT', `must be a port number (0-65535), got ${JSON.stringify(healthPortText)}`);
  const logLevel = get('TXOUTBOX_LOG_LEVEL') ?? 'info';
  if (logLevel !== 'debug' && logLevel !== 'info' && logLevel !== 'warn' && logLevel !== 'error') {
    throw bad('TXOUTBOX_LOG_LEVEL', `must be debug, info, warn or error, got ${JSON.stringify(logLevel)}`);
  }
  const localActivity = get('TXOUTBOX_PUBLISH_LOCAL_ACTIVITY') ?? 'false';
  if (localActivity !== 'true' && localActivity !== 'false') {
    throw bad('TXOUTBOX_PUBLISH_LOCAL_ACTIVITY', `must be true or false, got ${JSON.stringify(localActivity)}`);
  }
  const integer = (name: string, fallback: number, min: number, max = 100_000): number => {
    const text = get(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) throw bad(name, `must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
    return value;
  };
  const workerWorkflowTasks = integer('TXOUTBOX_WORKER_WORKFLOW_TASKS', 40, 2);
  const lingerSet = get('TXOUTBOX_PRODUCER_LINGER_MS') !== undefined;
  return {
    relayStartConcurrency: integer('TXOUTBOX_RELAY_START_CONCURRENCY', 16, 1),
    workerWorkflowTasks,
    workerWorkflowPolls: integer('TXOUTBOX_WORKER_WORKFLOW_POLLS', Math.min(10, workerWorkflowTasks), 2, workerWorkflowTasks),
    workerActivityTasks: integer('TXOUTBOX_WORKER_ACTIVITY_TASKS', 100, 1),
    producerLingerMs: lingerSet ? integer('TXOUTBOX_PRODUCER_LINGER_MS', 0, 0, 1000) : null,
    publishLocalActivity: localActivity === 'true',
    healthPort,
    logLevel,
    relayName: get('TXOUTBOX_RELAY_NAME') ?? 'relay',
    store,
    pgUrl,
    pgSchema,
    mongodbUri,
    mongodbDb: get('TXOUTBOX_MONGODB_DB') ?? 'txoutbox',
    temporalAddress,
    temporalNamespace: get('TXOUTBOX_TEMPORAL_NAMESPACE') ?? 'default',
    temporalUiUrl: (get('TXOUTBOX_TEMPORAL_UI_URL') ?? 'http://127.0.0.1:8233').replace(/\/$/, ''),
    taskQueue: get('TXOUTBOX_TASK_QUEUE') ?? 'txoutbox',
    kafkaBrokers,
  };
}
