/**
 * Creating topics on the real broker while the machine is busy: a KRaft broker answers the creation
 * before its own metadata cache has the topic, and the busier the machine, the longer that lasts.
 * The CPU is kept busy by shell loops spinning for the test's length (two cores run CI); with them, kafkajs'
 * own `createTopics({ waitForLeaders: true })` failed this test on every one of its runs here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Kafka, logLevel } from 'kafkajs';
import { createTopicsWithLeaders } from '../../workers/kafka/topics';
import { testServers, uniqueName } from '../support/servers';

const servers = testServers();

/** `count` processes spinning on the CPU until killed. */
function spinners(count: number): ChildProcess[] {
  return Array.from({ length: count }, () => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
}

describe('creating topics on the real broker', () => {
  it('a created topic has a leader for every partition when the call returns, on a busy machine too', async () => {
    // Arrange: six spinning processes; six clients creating eight topics each, as the fault harness's lanes start.
    const kafka = new Kafka({ clientId: 'test-topics', brokers: servers.kafkaBrokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const busy = spinners(6);
    const creators = Array.from({ length: 6 }, () => kafka.admin());
    const created: string[] = [];
    try {
      await Promise.all(creators.map((c) => c.connect()));
      // Act
      await Promise.all(
        creators.map(async (creator, c) => {
          for (let i = 0; i < 8; i++) {
            const topic = uniqueName(`topics-${c}-${i}`);
            created.push(topic);
            await createTopicsWithLeaders(creator, [{ topic, numPartitions: 3 }]);
          }
        }),
      );
    } finally {
      for (const child of busy) child.kill('SIGKILL');
      await Promise.all(creators.map((c) => c.disconnect()));
    }

    // Assert: every topic is there, with three partitions, each with a leader.
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: created });
      expect(topics).toHaveLength(48);
      for (const t of topics) {
        expect(t.partitions).toHaveLength(3);
        expect(t.partitions.every((p) => p.leader >= 0)).toBe(true);
      }
    } finally {
      await admin.deleteTopics({ topics: created }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  it('creating a topic that exists leaves it as it is', async () => {
    const kafka = new Kafka({ clientId: 'test-topics', brokers: servers.kafkaBrokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const topic = uniqueName('topics-exists');
    try {
      await createTopicsWithLeaders(admin, [{ topic, numPartitions: 2 }]);

      await createTopicsWithLeaders(admin, [{ topic, numPartitions: 5 }]);

      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(topics[0]?.partitions).toHaveLength(2);
    } finally {
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});
