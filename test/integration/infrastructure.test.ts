/**
 * The servers scripts/infra.sh brings up are real and usable by the clients txoutbox depends on:
 * Temporal (a workflow runs; search attributes; Web UI), Kafka (kafkajs against the pinned broker
 * version) and PostgreSQL (transactions commit and roll back).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { Kafka, logLevel, type IHeaders } from 'kafkajs';
import { Client as PgClient } from 'pg';
import { temporal } from '@temporalio/proto';
import { createGreetActivities } from '../fixtures/greet-activities';
import { testServers, uniqueName, waitFor } from '../support/servers';
import { createTopicsWithLeaders } from '../../workers/kafka/topics';

const servers = testServers();
const REPO = join(__dirname, '..', '..');

describe('Temporal dev server', () => {
  let connection: Connection;

  beforeAll(async () => {
    connection = await Connection.connect({ address: servers.temporalAddress });
  });

  afterAll(async () => {
    await connection.close();
  });

  test('a workflow with one activity runs to completion', async () => {
    // Arrange
    const taskQueue = uniqueName('infra-greet');
    const workerConnection = await NativeConnection.connect({ address: servers.temporalAddress });
    const worker = await Worker.create({
      connection: workerConnection,
      taskQueue,
      workflowsPath: require.resolve('../fixtures/workflows/greet-workflow'),
      activities: createGreetActivities(),
    });
    const client = new Client({ connection });

    // Act
    const result = await worker.runUntil(
      client.workflow.execute('greetWorkflow', { taskQueue, workflowId: uniqueName('greet'), args: ['outbox'] }),
    );
    await workerConnection.close();

    // Assert
    expect(result).toBe('hello, outbox');
  });

  test('the outbox search attributes are registered as Keyword', async () => {
    // Act
    const response = await connection.operatorService.listSearchAttributes({ namespace: 'default' });

    // Assert
    const keyword = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
    for (const name of ['OutboxStatus', 'OutboxEventType', 'OutboxAggregateId', 'OutboxTopic']) {
      expect(response.customAttributes[name]).toBe(keyword);
    }
  });

  test('the Web UI answers HTTP 200 on 127.0.0.1', async () => {
    // Act
    const response = await fetch(servers.temporalUiUrl);
    const body = await response.text();

    // Assert
    expect(new URL(servers.temporalUiUrl).hostname).toBe('127.0.0.1');
    expect(response.status).toBe(200);
    expect(body).toMatch(/<html/i);
  });
});

describe('Kafka broker', () => {
  const kafka = new Kafka({ clientId: 'txoutbox-infra-test', brokers: servers.kafkaBrokers, logLevel: logLevel.NOTHING });

  test('kafkajs produces (idempotent, acks=all) and consumes a message with key and headers', async () => {
    // Arrange
    const topic = uniqueName('infra-topic');
    const admin = kafka.admin();
    await admin.connect();
    await createTopicsWithLeaders(admin, [{ topic, numPartitions: 3 }]);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    const consumer = kafka.consumer({ groupId: uniqueName('infra-group') });
    await producer.connect();
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received: Array<{ key: string | undefined; value: string | undefined; headers: IHeaders; partition: number }> = [];
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        received.push({
          key: message.key?.toString(),
          value: message.value?.toString(),
          headers: message.headers ?? {},
          partition,
        });
      },
    });

    // Act
    const [ack] = await producer.send({
      topic,
      acks: -1,
      messages: [{ key: 'order-42', value: '{"total":10}', headers: { ce_id: 'evt-1', ce_type: 'OrderPlaced' } }],
    });
    await waitFor(() => received.length > 0, { what: 'the message to be consumed' });
    await Promise.all([consumer.disconnect(), producer.disconnect()]);
    await admin.deleteTopics({ topics: [topic] });
    await admin.disconnect();

    // Assert
    expect(ack?.errorCode).toBe(0);
    expect(received).toHaveLength(1);
    const [message] = received;
    expect(message?.key).toBe('order-42');
    expect(message?.value).toBe('{"total":10}');
    expect(message?.headers.ce_id?.toString()).toBe('evt-1');
    expect(message?.headers.ce_type?.toString()).toBe('OrderPlaced');
    expect(message?.partition).toBe(ack?.partition);
  });

  test('an unknown topic is refused, not auto-created', async () => {
    // Arrange
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 1 } });
    await producer.connect();

    // Act
    const sending = producer.send({ topic: uniqueName('no-such-topic'), acks: -1, messages: [{ value: 'x' }] });

    // Assert
    await expect(sending).rejects.toThrow(/does not host this topic-partition|unknown topic|not present in metadata/i);
    await producer.disconnect();
  });
});

describe('PostgreSQL', () => {
  let pg: PgClient;
  let schema: string;

  beforeAll(async () => {
    pg = new PgClient({ connectionString: servers.pgUrl });
    await pg.connect();
    schema = uniqueName('infra').replace(/-/g, '_');
    await pg.query(`create schema ${schema}`);
    await pg.query(`create table ${schema}.orders (id text primary key)`);
  });

  afterAll(async () => {
    await pg.query(`drop schema ${schema} cascade`);
    await pg.end();
  });

  test('a transaction commits', async () => {
    // Act
    await pg.query('begin');
    await pg.query(`insert into ${schema}.orders (id) values ('committed')`);
    await pg.query('commit');

    // Assert
    const { rows } = await pg.query(`select id from ${schema}.orders where id = 'committed'`);
    expect(rows).toEqual([{ id: 'committed' }]);
  });

  test('a transaction rolls back', async () => {
    // Act
    await pg.query('begin');
    await pg.query(`insert into ${schema}.orders (id) values ('rolled-back')`);
    await pg.query('rollback');

    // Assert
    const { rows } = await pg.query(`select id from ${schema}.orders where id = 'rolled-back'`);
    expect(rows).toEqual([]);
  });
});

describe('scripts/infra.sh', () => {
  let blocker: Server;
  let dataDir: string;

  beforeAll(async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    dataDir = mkdtempSync(join(tmpdir(), 'txoutbox-infra-'));
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('a taken port is a clear error that names the port', () => {
    // Arrange
    const port = (blocker.address() as AddressInfo).port;

    // Act
    const result = spawnSync('bash', ['scripts/infra.sh', 'up', 'kafka'], {
      cwd: REPO,
      env: { ...process.env, TXOUTBOX_DATA: dataDir, TXOUTBOX_KAFKA_PORT: String(port) },
      encoding: 'utf8',
      timeout: 120_000,
    });

    // Assert
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`port ${port} on 127.0.0.1 is already taken`);
  });
});
