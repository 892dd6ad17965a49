/**
 * A broker secured for real: the SASL_SSL listener scripts/infra.sh runs (TLS with a certificate of
 * its local CA, SCRAM-SHA-512). The relay (with its fast path) and the worker run as processes
 * configured only through TXOUTBOX_KAFKA_*, and publish over it; a wrong password or an untrusted
 * certificate stops the worker at start with a clear message.
 */
import { join } from 'node:path';
import { KafkaCollector } from '../support/kafka-collector';
import { TestPipeline } from '../support/pipeline';
import { STORE_KINDS } from '../support/pipeline-store';
import { pipelineProcessEnv, readyProcess, startOutboxProcess, type OutboxProcess } from '../support/processes';

/** The secured listener scripts/infra.sh started, as its printed settings name it. */
const SECURED = {
  brokers: process.env.TXOUTBOX_TEST_KAFKA_SASL_SSL_BROKERS ?? '127.0.0.1:9094',
  caFile: process.env.TXOUTBOX_TEST_KAFKA_CA_FILE ?? join(process.env.TXOUTBOX_DATA ?? join(__dirname, '..', '..', '.data'), 'kafka', 'tls', 'ca.pem'),
  user: process.env.TXOUTBOX_TEST_KAFKA_SCRAM_USER ?? 'txoutbox',
  password: process.env.TXOUTBOX_TEST_KAFKA_SCRAM_PASSWORD ?? 'txoutbox-local-scram',
};

describe.each(STORE_KINDS)('a Kafka broker secured with SASL_SSL and SCRAM-SHA-512 (%s store)', (kind) => {
  let p: TestPipeline;
  let env: NodeJS.ProcessEnv;
  const processes: OutboxProcess[] = [];

  beforeEach(async () => {
    p = await new TestPipeline(kind).setup();
    env = {
      ...pipelineProcessEnv(p),
      TXOUTBOX_FAST_PATH_TOPICS: p.smallTopic,
      TXOUTBOX_KAFKA_BROKERS: SECURED.brokers,
      TXOUTBOX_KAFKA_TLS: 'true',
      TXOUTBOX_KAFKA_TLS_CA_FILE: SECURED.caFile,
      TXOUTBOX_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      TXOUTBOX_KAFKA_SASL_USERNAME: SECURED.user,
      TXOUTBOX_KAFKA_SASL_PASSWORD: SECURED.password,
    };
  });

  afterEach(async () => {
    for (const { child } of processes) if (child.exitCode === null) child.kill('SIGKILL');
    processes.length = 0;
    await p.teardown();
  });

  function start(role: 'relay' | 'worker', overrides: NodeJS.ProcessEnv = {}): OutboxProcess {
    const started = startOutboxProcess(role, { ...env, ...overrides });
    processes.push(started);
    return started;
  }

  test('the worker and the relay (fast path) publish over it, configured only through TXOUTBOX_KAFKA_*', async () => {
    // Arrange
    const notes = new KafkaCollector(p.kafka, p.smallTopic);
    await notes.start();
    const worker = start('worker');
    const relay = start('relay');
    await Promise.all([readyProcess(worker), readyProcess(relay)]);

    // Act: one event for a workflow (the worker publishes it), one on the fast path's topic (the relay).
    const byWorker = await p.placeOrder('order-1');
    const byRelay = await p.noteOrder('order-2', 'sent over SASL_SSL');
    await p.collector.waitForEventIds([byWorker]);
    await notes.waitForEventIds([byRelay]);

    // Assert: read back over the plaintext listener, recorded where Kafka put them.
    const [workerCopy, ...moreWorkerCopies] = p.collector.withEventId(byWorker);
    const [relayCopy, ...moreRelayCopies] = notes.withEventId(byRelay);
    expect([moreWorkerCopies, moreRelayCopies]).toEqual([[], []]);
    expect(await p.markedPublished(byWorker)).toMatchObject({ kafka: { partition: workerCopy?.partition, offset: workerCopy?.offset } });
    expect(await p.markedPublished(byRelay)).toMatchObject({ kafka: { partition: relayCopy?.partition, offset: relayCopy?.offset } });
    // Every line either process wrote is a JSON line (the Temporal SDK's own records included).
    const notJson = (line: string): boolean => {
      try {
        return typeof JSON.parse(line) !== 'object';
      } catch {
        return true;
      }
    };
    expect([...worker.logs, ...relay.logs].filter(notJson)).toEqual([]);
    await notes.stop();
  });

  test.each([
    ['a wrong password', { TXOUTBOX_KAFKA_SASL_PASSWORD: 'not-the-password' }, /SASL SCRAM SHA512 authentication failed/],
    ['an untrusted certificate (no CA file: the system CAs do not know the local one)', { TXOUTBOX_KAFKA_TLS_CA_FILE: '' }, /certificate/],
  ])('%s stops the worker at start with a clear message (exit 1)', async (_case, overrides, reason) => {
    // Act
    const worker = start('worker', overrides);
    const code = await worker.exited;

    // Assert
    expect(code).toBe(1);
    const message = worker.logs.join('\n');
    expect(message).toContain(`txoutbox worker: cannot reach Kafka at ${SECURED.brokers} (TXOUTBOX_KAFKA_BROKERS):`);
    expect(message).toMatch(reason);
    expect(message).not.toContain(SECURED.password);
  });
});
