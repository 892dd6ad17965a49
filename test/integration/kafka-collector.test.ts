/**
 * The fault harness's recorder (test/support/kafka-collector.ts) against the real broker: it is the
 * independent witness of what a topic held, so a topic deleted and created again under load must
 * not make it take a message of the old life for one of the new life (the checker orders each key's
 * events by life, then offset, and expects the inbox to apply every event of the current life).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { createOutboxProducer } from '../../workers/kafka/producer';
import { createTopicsWithLeaders } from '../../workers/kafka/topics';
import { KafkaCollector } from '../support/kafka-collector';
import { testServers, uniqueName, waitFor } from '../support/servers';
import { DelayingTcpProxy, kafkaProxyAddresses } from '../support/tcp-proxy';

const servers = testServers();

describe('KafkaCollector on the real broker', () => {
  const kafka = new Kafka({ clientId: 'test-collector', brokers: servers.kafkaBrokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const producer = createOutboxProducer(kafka);
  // The recorder reads through a proxy that can make its link slow, as a busy harness process is.
  const { listen, target } = kafkaProxyAddresses();
  const proxy = new DelayingTcpProxy(listen, target);
  const slowKafka = new Kafka({ clientId: 'test-collector-slow', brokers: [`${listen.host}:${listen.port}`], logLevel: logLevel.NOTHING });

  beforeAll(async () => {
    await Promise.all([admin.connect(), producer.connect(), proxy.start()]);
  });

  afterAll(async () => {
    await Promise.all([admin.disconnect(), producer.disconnect(), proxy.stop()]);
  });

  it('never records a message of a deleted life of the topic as one of its new life, with the topic written to throughout', async () => {
    const topic = uniqueName('collector-lives');
    await createTopicsWithLeaders(admin, [{ topic, numPartitions: 1 }]);
    const collector = new KafkaCollector(slowKafka, topic);
    await collector.start();
    // When each message was acknowledged. Written all along, a hundred every 20 ms.
    const acknowledged = new Map<string, number>();
    let writing = true;
    let next = 0;
    const writer = (async () => {
      while (writing) {
        const ids = Array.from({ length: 100 }, () => `m-${next++}`);
        try {
          await producer.send({ topic, acks: -1, messages: ids.map((id) => ({ value: 'x'.repeat(100), headers: { ce_id: id } })) });
        } catch {
          await sleep(50); // the topic is gone for a moment: nothing of this batch was acknowledged
          continue;
        }
        const at = Date.now();
        for (const id of ids) acknowledged.set(id, at);
        await sleep(20);
      }
    })();
    let deletionAsked = Infinity;
    const watched: Admin = {
      ...admin,
      deleteTopics: async (options) => {
        deletionAsked = Date.now();
        return admin.deleteTopics(options);
      },
    };
    try {
      await waitFor(() => collector.messages.length >= 2_000, { timeoutMs: 60_000, what: 'the recorder reading the first life' });
      // From here on what the broker answers the recorder reaches it a second late: the deletion
      // is over before the last of the old life it fetched has been read.
      proxy.delayRepliesOnly = true;
      proxy.delayMs = 1_000;
      const deletion = await collector.recreateTopic(watched, () => createTopicsWithLeaders(admin, [{ topic, numPartitions: 1 }]), {
        timeoutMs: 60_000,
        onUnread: (err) => {
          throw err;
        },
      });
      expect(deletion.readTo).toBeLessThanOrEqual(deletionAsked);
      expect(deletion.at).toBeGreaterThanOrEqual(deletionAsked);
      // The new life, written for a while and read.
      await waitFor(() => collector.messages.filter((m) => m.incarnation === 1).length >= 2_000, { timeoutMs: 60_000, what: 'the recorder reading the new life' });
    } finally {
      writing = false;
      await writer;
      await collector.stop();
    }
    const life = (n: number) => collector.messages.filter((m) => m.incarnation === n);
    // Acknowledged before the deletion was asked for: written to the old life, whatever the recorder says.
    const oldTakenForNew = life(1).filter((m) => (acknowledged.get(m.cloudEvent.id) ?? Infinity) < deletionAsked);
    expect(oldTakenForNew.map((m) => `${m.cloudEvent.id}@${m.offset}`).slice(0, 5)).toEqual([]);
    // Each life's positions are read in order, once, from the start.
    for (const n of [0, 1]) {
      const offsets = life(n).map((m) => Number(m.offset));
      expect(offsets[0]).toBe(0);
      expect(offsets.every((offset, i) => offset === i)).toBe(true);
    }
  }, 180_000);
});
