/**
 * Configuration from TXOUTBOX_* variables: each wrong value is refused at start with INVALID_CONFIG
 * naming its variable; the security settings become the kafkajs and Temporal connection options;
 * secrets never appear in what is printed or logged.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createJsonLogger, OutboxErrorCode } from '../../domain/outbox';
import { kafkaClientConfig, loadConfig, redactConfig, redactUrl, temporalConnectionOptions } from '../../workers/process/config';
import { DEFAULT_PUBLISH_POLICY } from '../../workflows/types';

const dir = mkdtempSync(join(tmpdir(), 'txoutbox-config-'));
const pem = (name: string, body: string): string => {
  const path = join(dir, name);
  writeFileSync(path, `-----BEGIN ${body}-----\nAAAA\n-----END ${body}-----\n`);
  return path;
};
const ca = pem('ca.pem', 'CERTIFICATE');
const cert = pem('client.pem', 'CERTIFICATE');
const key = pem('client-key.pem', 'PRIVATE KEY');

const WRONG: Array<[string, Record<string, string>, string]> = [
  ['an unknown store', { TXOUTBOX_STORE: 'redis' }, 'TXOUTBOX_STORE'],
  ['a PostgreSQL URL that is not one', { TXOUTBOX_PG_URL: 'mysql://x' }, 'TXOUTBOX_PG_URL'],
  ['a schema that is not an identifier', { TXOUTBOX_PG_SCHEMA: 'Robert"); drop' }, 'TXOUTBOX_PG_SCHEMA'],
  ['a MongoDB URI that is not one', { TXOUTBOX_MONGODB_URI: 'http://x' }, 'TXOUTBOX_MONGODB_URI'],
  ['a Temporal address without a port', { TXOUTBOX_TEMPORAL_ADDRESS: 'temporal' }, 'TXOUTBOX_TEMPORAL_ADDRESS'],
  ['a broker list with a bad entry', { TXOUTBOX_KAFKA_BROKERS: '127.0.0.1:9092,broker' }, 'TXOUTBOX_KAFKA_BROKERS'],
  ['a port that is a word', { TXOUTBOX_HEALTH_PORT: 'eighty' }, 'TXOUTBOX_HEALTH_PORT'],
  ['a port out of range', { TXOUTBOX_HEALTH_PORT: '70000' }, 'TXOUTBOX_HEALTH_PORT'],
  ['an unknown log level', { TXOUTBOX_LOG_LEVEL: 'loud' }, 'TXOUTBOX_LOG_LEVEL'],
  ['a boolean that is not one', { TXOUTBOX_PUBLISH_LOCAL_ACTIVITY: 'yes' }, 'TXOUTBOX_PUBLISH_LOCAL_ACTIVITY'],
  ['a first-attempt flag that is not a boolean', { TXOUTBOX_PUBLISH_FIRST_ATTEMPT_LOCAL: 'on' }, 'TXOUTBOX_PUBLISH_FIRST_ATTEMPT_LOCAL'],
  ['a concurrency of zero', { TXOUTBOX_RELAY_START_CONCURRENCY: '0' }, 'TXOUTBOX_RELAY_START_CONCURRENCY'],
  ['a fractional task count', { TXOUTBOX_WORKER_ACTIVITY_TASKS: '1.5' }, 'TXOUTBOX_WORKER_ACTIVITY_TASKS'],
  ['more polls than tasks', { TXOUTBOX_WORKER_WORKFLOW_TASKS: '10', TXOUTBOX_WORKER_WORKFLOW_POLLS: '20' }, 'TXOUTBOX_WORKER_WORKFLOW_POLLS'],
  ['a negative linger', { TXOUTBOX_PRODUCER_LINGER_MS: '-5' }, 'TXOUTBOX_PRODUCER_LINGER_MS'],
  ['a feed batch over 500', { TXOUTBOX_RELAY_BATCH_SIZE: '1000' }, 'TXOUTBOX_RELAY_BATCH_SIZE'],
  ['a negative checkpoint interval', { TXOUTBOX_RELAY_CHECKPOINT_EVERY_MS: '-1' }, 'TXOUTBOX_RELAY_CHECKPOINT_EVERY_MS'],
  ['a sequencer buffer under 10', { TXOUTBOX_SEQUENCER_BUFFER: '5' }, 'TXOUTBOX_SEQUENCER_BUFFER'],
  ['a negative attempt budget', { TXOUTBOX_PUBLISH_MAX_ATTEMPTS: '-1' }, 'TXOUTBOX_PUBLISH_MAX_ATTEMPTS'],
  ['a publish timeout under a second', { TXOUTBOX_PUBLISH_TIMEOUT_MS: '10' }, 'TXOUTBOX_PUBLISH_TIMEOUT_MS'],
  ['a longest retry wait below the first', { TXOUTBOX_PUBLISH_RETRY_INITIAL_MS: '5000', TXOUTBOX_PUBLISH_RETRY_MAX_MS: '1000' }, 'TXOUTBOX_PUBLISH_RETRY_MAX_MS'],
  ['a dead-letter topic Kafka would refuse', { TXOUTBOX_DEAD_LETTER_TOPIC: 'dead letters' }, 'TXOUTBOX_DEAD_LETTER_TOPIC'],
  ['a workflow-id prefix with a slash', { TXOUTBOX_WORKFLOW_ID_PREFIX: 'shop/' }, 'TXOUTBOX_WORKFLOW_ID_PREFIX'],
  ['a relay-runs-worker flag that is not true or false', { TXOUTBOX_RELAY_RUNS_WORKER: 'yes' }, 'TXOUTBOX_RELAY_RUNS_WORKER'],
  ['an eager-start flag that is not true or false', { TXOUTBOX_EAGER_START: '1' }, 'TXOUTBOX_EAGER_START'],
  ['a fast-path topic Kafka would refuse', { TXOUTBOX_FAST_PATH_TOPICS: 'orders,not ok' }, 'TXOUTBOX_FAST_PATH_TOPICS'],
  ['a fast-path type that is not a type name', { TXOUTBOX_FAST_PATH_TYPES: '-bad' }, 'TXOUTBOX_FAST_PATH_TYPES'],
  ['a TLS flag that is not a boolean', { TXOUTBOX_KAFKA_TLS: 'on' }, 'TXOUTBOX_KAFKA_TLS'],
  ['a TLS file that does not exist', { TXOUTBOX_KAFKA_TLS: 'true', TXOUTBOX_KAFKA_TLS_CA_FILE: '/nonexistent/ca.pem' }, 'TXOUTBOX_KAFKA_TLS_CA_FILE'],
  ['a client certificate without its key', { TXOUTBOX_TEMPORAL_TLS: 'true', TXOUTBOX_TEMPORAL_TLS_CERT_FILE: cert }, 'TXOUTBOX_TEMPORAL_TLS_CERT_FILE'],
  ['TLS files without TLS', { TXOUTBOX_KAFKA_TLS_CA_FILE: ca }, 'TXOUTBOX_KAFKA_TLS_CA_FILE'],
  ['an unknown SASL mechanism', { TXOUTBOX_KAFKA_SASL_MECHANISM: 'kerberos' }, 'TXOUTBOX_KAFKA_SASL_MECHANISM'],
  ['SASL without a password', { TXOUTBOX_KAFKA_SASL_MECHANISM: 'plain', TXOUTBOX_KAFKA_SASL_USERNAME: 'u' }, 'TXOUTBOX_KAFKA_SASL_MECHANISM'],
  ['a partitioned flag that is not true or false', { TXOUTBOX_RELAY_PARTITIONED: 'on' }, 'TXOUTBOX_RELAY_PARTITIONED'],
  ['a lease under a second', { TXOUTBOX_RELAY_LEASE_MS: '500' }, 'TXOUTBOX_RELAY_LEASE_MS'],
  ['a partition count over 1024', { TXOUTBOX_PARTITIONS: '2048' }, 'TXOUTBOX_PARTITIONS'],
  ['SASL credentials without a mechanism', { TXOUTBOX_KAFKA_SASL_USERNAME: 'u', TXOUTBOX_KAFKA_SASL_PASSWORD: 'p' }, 'TXOUTBOX_KAFKA_SASL_USERNAME'],
];

describe('loadConfig', () => {
  test('the defaults need no variable at all', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ store: 'mongodb', mongodbUri: 'mongodb://127.0.0.1:27017/?replicaSet=secantus&directConnection=true', temporalAddress: '127.0.0.1:7233', kafkaBrokers: ['127.0.0.1:9092'], relayStartConcurrency: 16 });
    expect(config.kafkaSecurity).toEqual({ tls: null, sasl: null });
    expect(config.temporalSecurity).toEqual({ tls: null, apiKey: null });
    expect(config.fastPath).toBeNull();
    expect(loadConfig({ TXOUTBOX_FAST_PATH_TOPICS: ' orders , payments ', TXOUTBOX_FAST_PATH_TYPES: 'orders.OrderPlaced' }).fastPath).toEqual({
      topics: ['orders', 'payments'],
      types: ['orders.OrderPlaced'],
    });
  });

  test('relays are not partitioned by default; partitioned, with a 15 s lease and their own member id unless told', () => {
    expect(loadConfig({})).toMatchObject({ relayPartitioned: false, relayLeaseMs: 15_000, relayMember: null, partitions: null });
    expect(loadConfig({ TXOUTBOX_RELAY_PARTITIONED: 'true', TXOUTBOX_RELAY_LEASE_MS: '5000', TXOUTBOX_RELAY_MEMBER: 'relay-1', TXOUTBOX_PARTITIONS: '64' })).toMatchObject({
      relayPartitioned: true,
      relayLeaseMs: 5_000,
      relayMember: 'relay-1',
      partitions: 64,
    });
  });

  test('the feed batch is 100 events by default and 500 with the fast path on, unless TXOUTBOX_RELAY_BATCH_SIZE says otherwise', () => {
    expect(loadConfig({}).relayBatchSize).toBe(100);
    expect(loadConfig({ TXOUTBOX_FAST_PATH_TOPICS: 'orders' }).relayBatchSize).toBe(500);
    expect(loadConfig({ TXOUTBOX_FAST_PATH_TYPES: 'orders.OrderPlaced', TXOUTBOX_RELAY_BATCH_SIZE: '50' }).relayBatchSize).toBe(50);
  });

  test('the relay saves its feed position at most once a second while busy, unless TXOUTBOX_RELAY_CHECKPOINT_EVERY_MS says otherwise (0: every batch)', () => {
    expect(loadConfig({}).relayCheckpointEveryMs).toBe(1000);
    expect(loadConfig({ TXOUTBOX_RELAY_CHECKPOINT_EVERY_MS: '0' }).relayCheckpointEveryMs).toBe(0);
  });

  test('the retry policy and the dead-letter topic come from TXOUTBOX_PUBLISH_* and TXOUTBOX_DEAD_LETTER_TOPIC', () => {
    const config = loadConfig({
      TXOUTBOX_PUBLISH_MAX_ATTEMPTS: '0',
      TXOUTBOX_PUBLISH_TIMEOUT_MS: '5000',
      TXOUTBOX_PUBLISH_RETRY_INITIAL_MS: '200',
      TXOUTBOX_PUBLISH_RETRY_MAX_MS: '2000',
      TXOUTBOX_DEAD_LETTER_TOPIC: 'orders.dlq',
    });
    expect(config.publishPolicy).toEqual({ ...DEFAULT_PUBLISH_POLICY, maximumAttempts: 0, startToCloseTimeoutMs: 5000, initialIntervalMs: 200, maximumIntervalMs: 2000, deadLetterTopic: 'orders.dlq' });
    expect(loadConfig({}).publishPolicy).toEqual(DEFAULT_PUBLISH_POLICY);
    expect(loadConfig({ TXOUTBOX_PUBLISH_FIRST_ATTEMPT_LOCAL: 'false' }).publishPolicy.firstAttemptLocal).toBe(false);
  });

  test('one setting makes the one-process shape: TXOUTBOX_RELAY_RUNS_WORKER turns eager start on unless TXOUTBOX_EAGER_START says otherwise', () => {
    expect(loadConfig({})).toMatchObject({ relayRunsWorker: false, eagerStart: false });
    expect(loadConfig({ TXOUTBOX_RELAY_RUNS_WORKER: 'true' })).toMatchObject({ relayRunsWorker: true, eagerStart: true });
    expect(loadConfig({ TXOUTBOX_RELAY_RUNS_WORKER: 'true', TXOUTBOX_EAGER_START: 'false' })).toMatchObject({ relayRunsWorker: true, eagerStart: false });
  });

  test.each(WRONG)('%s is refused with INVALID_CONFIG naming the variable', (_name, env, variable) => {
    expect(() => loadConfig(env)).toThrow(expect.objectContaining({ code: OutboxErrorCode.invalidConfig, message: expect.stringContaining(variable) }));
  });
});

describe('security settings', () => {
  const secure = {
    TXOUTBOX_PG_URL: 'postgres://app:pg-secret@db.internal:5432/app?sslmode=verify-full',
    TXOUTBOX_MONGODB_URI: 'mongodb://app:mongo-secret@m1,m2/?replicaSet=rs0&tls=true',
    TXOUTBOX_KAFKA_TLS: 'true',
    TXOUTBOX_KAFKA_TLS_CA_FILE: ca,
    TXOUTBOX_KAFKA_TLS_CERT_FILE: cert,
    TXOUTBOX_KAFKA_TLS_KEY_FILE: key,
    TXOUTBOX_KAFKA_SASL_MECHANISM: 'scram-sha-512',
    TXOUTBOX_KAFKA_SASL_USERNAME: 'outbox',
    TXOUTBOX_KAFKA_SASL_PASSWORD: 'kafka-secret',
    TXOUTBOX_TEMPORAL_ADDRESS: 'ns.tmprl.cloud:7233',
    TXOUTBOX_TEMPORAL_TLS: 'true',
    TXOUTBOX_TEMPORAL_TLS_CA_FILE: ca,
    TXOUTBOX_TEMPORAL_TLS_CERT_FILE: cert,
    TXOUTBOX_TEMPORAL_TLS_KEY_FILE: key,
    TXOUTBOX_TEMPORAL_TLS_SERVER_NAME: 'frontend.internal',
  };

  test('Kafka: TLS with a CA and a client certificate, and SASL/SCRAM, become kafkajs options', () => {
    const kafka = kafkaClientConfig(loadConfig(secure), 'worker');
    expect(kafka).toMatchObject({
      clientId: 'worker',
      ssl: { ca: expect.stringContaining('BEGIN CERTIFICATE'), cert: expect.stringContaining('BEGIN CERTIFICATE'), key: expect.stringContaining('PRIVATE KEY'), rejectUnauthorized: true },
      sasl: { mechanism: 'scram-sha-512', username: 'outbox', password: 'kafka-secret' },
    });
    expect(kafkaClientConfig(loadConfig({ TXOUTBOX_KAFKA_TLS: 'true' }), 'w').ssl).toBe(true);
  });

  test('Temporal: mTLS with a CA and server name, and an API key (which implies TLS)', () => {
    const options = temporalConnectionOptions(loadConfig(secure));
    expect(options).toMatchObject({
      address: 'ns.tmprl.cloud:7233',
      tls: { serverNameOverride: 'frontend.internal', serverRootCACertificate: expect.any(Buffer), clientCertPair: { crt: expect.any(Buffer), key: expect.any(Buffer) } },
    });
    expect(temporalConnectionOptions(loadConfig({ TXOUTBOX_TEMPORAL_API_KEY: 'tk-secret' }))).toEqual({ address: '127.0.0.1:7233', tls: {}, apiKey: 'tk-secret' });
    expect(temporalConnectionOptions(loadConfig({}))).toEqual({ address: '127.0.0.1:7233' });
  });

  test('secrets are never printed: the effective config and the logs show them redacted', () => {
    const config = loadConfig({ ...secure, TXOUTBOX_TEMPORAL_API_KEY: 'tk-secret' });
    const printed = JSON.stringify(redactConfig(config));
    const logged: string[] = [];
    createJsonLogger('info', (line) => logged.push(line)).info('config', { config, sasl: config.kafkaSecurity.sasl, apiKey: 'tk-secret' });
    for (const secret of ['pg-secret', 'mongo-secret', 'kafka-secret', 'tk-secret', 'PRIVATE KEY']) {
      expect(printed).not.toContain(secret);
      expect(logged.join('\n')).not.toContain(secret);
    }
    expect(printed).toContain('postgres://app:[redacted]@db.internal:5432/app?sslmode=verify-full');
    expect(redactUrl('mongodb+srv://u:p@x/?a=b')).toBe('mongodb+srv://u:[redacted]@x/?a=b');
    expect(redactUrl('postgres://127.0.0.1:5432/db')).toBe('postgres://127.0.0.1:5432/db');
  });
});
