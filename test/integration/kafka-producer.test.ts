/**
 * The outbox's producer on the real broker, through a broker stall longer than the client's request
 * timeout, with concurrent sends to one partition: the conditions under which kafkajs' idempotent
 * producer handed a failed batch's sequence number to the next batch, and the broker, taking that
 * batch for a retry, acknowledged it with the earlier batch's offset and never wrote it.
 *
 * Freezes the broker scripts/infra.sh started (SIGSTOP), so it needs that script's Kafka; and reaches
 * it through a delaying proxy (its third listener, advertised at the proxy's address).
 */
import { Kafka, logLevel } from 'kafkajs';
import { createOutboxProducer } from '../../workers/kafka/producer';
import { infraPid } from '../support/infra-control';
import { DelayingTcpProxy, kafkaProxyAddresses } from '../support/tcp-proxy';
import { readPartition, unfaithful } from '../support/kafka-partition';
import { testServers, uniqueName } from '../support/servers';
import { createTopicsWithLeaders } from '../../workers/kafka/topics';

const servers = testServers();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('the outbox producer on the real broker', () => {
  it('every acknowledged send is in the topic at the offset it was acknowledged with, after a broker stall longer than the request timeout', async () => {
    // Arrange: one partition; a client timeout (3 s) shorter than the stall (8 s); 20 senders.
    const kafka = new Kafka({ clientId: 'test-stall', brokers: servers.kafkaBrokers, logLevel: logLevel.NOTHING, requestTimeout: 3_000 });
    const admin = kafka.admin();
    await admin.connect();
    const topic = uniqueName('producer-stall');
    await createTopicsWithLeaders(admin, [{ topic, numPartitions: 1 }]);
    await admin.disconnect();
    const producer = createOutboxProducer(kafka);
    await producer.connect();
    const kafkaPid = infraPid('kafka');
    const acknowledged: Array<{ value: string; offset: string }> = [];
    let stalledSends = 0; // sends that outlasted the request timeout: the stall reached the producer
    let next = 0;
    let sending = true;

    // Act: senders run for 16 s; the broker is frozen from the 4th to the 12th second.
    const senders = Array.from({ length: 20 }, async () => {
      while (sending) {
        const value = `m${next++}`;
        const began = Date.now();
        try {
          const [meta] = await producer.send({ topic, acks: -1, messages: [{ key: value, value }] });
          acknowledged.push({ value, offset: meta?.baseOffset ?? meta?.offset ?? '-1' });
        } catch {
          // A failed send promises nothing: the outbox retries it as a new attempt.
        } finally {
          if (Date.now() - began > 3_000) stalledSends += 1;
        }
      }
    });
    await sleep(4_000);
    process.kill(kafkaPid, 'SIGSTOP');
    try {
      await sleep(8_000);
    } finally {
      process.kill(kafkaPid, 'SIGCONT');
    }
    await sleep(4_000);
    sending = false;
    await Promise.all(senders);
    await producer.disconnect();
    const topicHolds = await readPartition(kafka, topic);

    // Assert: nothing acknowledged is missing, and each acknowledgement names where its message is.
    expect(stalledSends).toBeGreaterThan(0);
    expect(acknowledged.length).toBeGreaterThan(100);
    expect(unfaithful(acknowledged, topicHolds)).toEqual({ missing: [], misplaced: [] });
  }, 180_000);
  it('a producer whose broker connection opened while the broker did not answer sends again once it answers (kafkajs alone stays "Broker not connected")', async () => {
    // Arrange: a client that reaches the broker only through the proxy; a topic; one send through it.
    const proxy = new DelayingTcpProxy(kafkaProxyAddresses().listen, kafkaProxyAddresses().target);
    await proxy.start();
    const kafka = new Kafka({ clientId: 'test-wedge', brokers: [`${kafkaProxyAddresses().listen.host}:${kafkaProxyAddresses().listen.port}`], logLevel: logLevel.NOTHING, requestTimeout: 1_000, connectionTimeout: 1_000 });
    const admin = kafka.admin();
    const topic = uniqueName('producer-wedge');
    const producer = createOutboxProducer(kafka, { retries: 0 });
    const failures: string[] = [];
    try {
      await admin.connect();
      await createTopicsWithLeaders(admin, [{ topic, numPartitions: 1 }]);
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: [{ value: 'before' }] });

      // Act: the broker goes away (the client reconnects to a new seed broker), then accepts
      // connections without answering (a frozen or slow broker: its ApiVersions request times out on
      // an open connection), then answers again.
      await proxy.stop();
      await producer.send({ topic, acks: -1, messages: [{ value: 'while away' }] }).catch((err: Error) => failures.push(err.message));
      proxy.delayMs = 4_000;
      await proxy.start();
      await producer.send({ topic, acks: -1, messages: [{ value: 'while silent' }] }).catch((err: Error) => failures.push(err.message));
      proxy.delayMs = 0;
      await sleep(5_000); // what the silent broker was sent arrives, late: nothing waits for it any more
      let sentAgain: string | undefined;
      for (const until = Date.now() + 30_000; sentAgain === undefined && Date.now() < until; ) {
        sentAgain = await producer.send({ topic, acks: -1, messages: [{ value: 'after' }] }).then(
          ([meta]) => meta?.baseOffset ?? meta?.offset ?? '?',
          (err: Error) => void failures.push(err.message),
        );
        if (sentAgain === undefined) await sleep(1_000);
      }

      // Assert: the broker was unreachable and then silent, and once it answered a send passed again.
      expect(failures.length).toBeGreaterThan(0);
      expect({ sentAgain: sentAgain !== undefined, lastFailure: sentAgain === undefined ? failures[failures.length - 1] : null }).toEqual({ sentAgain: true, lastFailure: null });
    } finally {
      await producer.disconnect().catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
      await proxy.stop();
    }
  }, 120_000);
});
