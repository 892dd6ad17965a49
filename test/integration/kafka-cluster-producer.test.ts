/**
 * The outbox's producer on a three-broker Kafka cluster (scripts/infra.sh, TXOUTBOX_KAFKA=cluster:
 * replication factor 3, min.insync.replicas=2, no unclean election), with 20 concurrent senders to
 * one partition while that partition's leader is killed (SIGKILL), another is elected, and the old
 * one comes back as a follower. This is where Kafka clients have lost acknowledged writes or given
 * up (kafkajs issue 1008: an election surfacing as KafkaJSNonRetriableError), and where a single
 * broker can never take a test.
 *
 * Starts the cluster when the scripts do not run it, and stops what it started.
 */
import { Kafka, logLevel } from 'kafkajs';
import { isFatal } from '../../activities/publish-event';
import { createOutboxProducer } from '../../workers/kafka-producer';
import { useKafkaCluster, type KafkaClusterHandle } from '../support/infra-control';
import { readPartition, unfaithful } from '../support/kafka-partition';
import { uniqueName, waitFor } from '../support/servers';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('the outbox producer on a three-broker cluster', () => {
  let cluster: KafkaClusterHandle | undefined;
  beforeAll(async () => {
    cluster = await useKafkaCluster();
  }, 300_000);
  afterAll(async () => {
    await cluster?.release();
  }, 120_000);

  it('every acknowledged send is in the topic at the offset it was acknowledged with, while the partition leader is killed and another is elected', async () => {
    // Arrange: one partition with three in-sync replicas; 20 senders with acks from all of them.
    const { brokers, kill9, start } = cluster as KafkaClusterHandle;
    const kafka = new Kafka({ clientId: 'test-election', brokers, logLevel: logLevel.NOTHING, requestTimeout: 5_000 });
    const admin = kafka.admin();
    await admin.connect();
    const topic = uniqueName('producer-election');
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 3 }], waitForLeaders: true });
    const partition = async (): Promise<{ leader: number; isr: number[] }> => {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const [p] = topics[0]?.partitions ?? [];
      return { leader: p?.leader ?? -1, isr: p?.isr ?? [] };
    };
    await waitFor(async () => (await partition()).isr.length === 3, { timeoutMs: 60_000, what: `${topic} with 3 in-sync replicas` });
    const { leader: oldLeader } = await partition();
    const producer = createOutboxProducer(kafka);
    await producer.connect();
    const acknowledged: Array<{ value: string; offset: string; at: number }> = [];
    const failures: Error[] = [];
    let next = 0;
    let sending = true;

    // Act: senders run throughout; the leader is killed at the 3rd second and started again at the
    // 20th (the controller fences it after its session timeout, 9 s, and elects another).
    const senders = Array.from({ length: 20 }, async () => {
      while (sending) {
        const value = `m${next++}`;
        try {
          const [meta] = await producer.send({ topic, acks: -1, messages: [{ key: value, value }] });
          acknowledged.push({ value, offset: meta?.baseOffset ?? meta?.offset ?? '-1', at: Date.now() });
        } catch (err) {
          // A failed send promises nothing: the outbox retries it as a new attempt.
          failures.push(err as Error);
          await sleep(200);
        }
      }
    });
    await sleep(3_000);
    const killedAt = Date.now();
    kill9(oldLeader);
    const newLeader = await waitFor(async () => {
      const { leader } = await partition();
      return leader !== oldLeader && leader >= 0 ? leader : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500, what: `a leader other than broker ${oldLeader}` });
    await sleep(Math.max(0, killedAt + 20_000 - Date.now()));
    await start(oldLeader);
    await waitFor(async () => (await partition()).isr.length === 3, { timeoutMs: 90_000, intervalMs: 500, what: `broker ${oldLeader} back in sync` });
    await sleep(3_000);
    sending = false;
    await Promise.all(senders);
    await producer.disconnect();
    await admin.disconnect();
    const topicHolds = await readPartition(kafka, topic);

    // Assert: the election happened under the senders, they went on after it, nothing acknowledged
    // is missing or elsewhere than its acknowledgement says, and no error of the election is one the
    // outbox would take for fatal (an event escalated for a passing condition).
    expect(newLeader).not.toBe(oldLeader);
    expect(failures.length).toBeGreaterThan(0);
    expect(acknowledged.filter((a) => a.at > killedAt).length).toBeGreaterThan(50);
    expect(unfaithful(acknowledged, topicHolds)).toEqual({ missing: [], misplaced: [] });
    expect(failures.filter(isFatal).map((e) => `${e.name}: ${e.message}`)).toEqual([]);
  }, 240_000);
});
