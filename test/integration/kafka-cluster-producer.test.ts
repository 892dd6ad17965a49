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
import { createOutboxProducer } from '../../workers/kafka/producer';
import { useKafkaCluster, type KafkaClusterHandle } from '../support/infra-control';
import { readPartition, unfaithful } from '../support/kafka-partition';
import { uniqueName, waitFor } from '../support/servers';
import { createTopicsWithLeaders } from '../../workers/kafka/topics';

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
    const { kafka, admin, topic, partition } = await openTopic(brokers, 'producer-election');
    const { leader: oldLeader } = await partition();
    const producer = createOutboxProducer(kafka);
    await producer.connect();

    // Act: senders run throughout; the leader is killed at the 3rd second and started again at the
    // 20th (the controller fences it after its session timeout, 9 s, and elects another).
    // A failed send promises nothing: the outbox retries it as a new attempt.
    const senders = startSenders(producer, topic, 20);
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
    const { acknowledged, failures } = await senders.stop();
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

  it('a write refused for want of in-sync replicas (NOT_ENOUGH_REPLICAS) is retried, never taken for fatal, and passes once the replica is back', async () => {
    // Arrange: a topic that needs all three replicas in sync (min.insync.replicas=3), so that losing
    // one follower makes the leader refuse writes: with every broker also a controller voter, the
    // in-sync set of the cluster's own topics cannot fall below two while the quorum stands.
    const { brokers, kill9, start } = cluster as KafkaClusterHandle;
    const { kafka, admin, topic, partition } = await openTopic(brokers, 'producer-isr', [{ name: 'min.insync.replicas', value: '3' }]);
    const { leader, replicas } = await partition();
    const follower = replicas.find((r) => r !== leader) as number;
    const producer = createOutboxProducer(kafka);
    await producer.connect();

    // Act: five senders; a follower killed, the in-sync set shrinks, the follower started again.
    const senders = startSenders(producer, topic, 5);
    await sleep(2_000);
    kill9(follower);
    await waitFor(async () => (await partition()).isr.length === 2, { timeoutMs: 60_000, intervalMs: 500, what: `broker ${follower} out of the in-sync set` });
    await waitFor(() => senders.failures.some((e) => refusal(e) === 'NOT_ENOUGH_REPLICAS'), { timeoutMs: 30_000, what: 'a send refused with NOT_ENOUGH_REPLICAS' }).catch(() => undefined);
    await start(follower);
    await waitFor(async () => (await partition()).isr.length === 3, { timeoutMs: 90_000, intervalMs: 500, what: `broker ${follower} back in sync` });
    const backAt = Date.now();
    await sleep(3_000);
    const { acknowledged, failures } = await senders.stop();
    await producer.disconnect();
    await admin.disconnect();
    const topicHolds = await readPartition(kafka, topic);

    // Assert: writes were refused for want of replicas, none of those refusals is fatal to the
    // outbox, writes passed again once the follower was back, and every acknowledgement holds.
    expect(failures.map(refusal)).toContain('NOT_ENOUGH_REPLICAS');
    expect(failures.filter(isFatal).map((e) => `${e.name}: ${e.message}`)).toEqual([]);
    expect(acknowledged.filter((a) => a.at > backAt).length).toBeGreaterThan(0);
    expect(unfaithful(acknowledged, topicHolds)).toEqual({ missing: [], misplaced: [] });
  }, 240_000);
});

type Acknowledged = { value: string; offset: string; at: number };

/** A topic of one partition on three replicas, with its own client and admin, once all three are in sync. */
async function openTopic(brokers: string[], name: string, configEntries: Array<{ name: string; value: string }> = []) {
  const kafka = new Kafka({ clientId: `test-${name}`, brokers, logLevel: logLevel.NOTHING, requestTimeout: 5_000 });
  const admin = kafka.admin();
  await admin.connect();
  const topic = uniqueName(name);
  await createTopicsWithLeaders(admin, [{ topic, numPartitions: 1, replicationFactor: 3, configEntries }]);
  const partition = async (): Promise<{ leader: number; replicas: number[]; isr: number[] }> => {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    const [p] = topics[0]?.partitions ?? [];
    return { leader: p?.leader ?? -1, replicas: p?.replicas ?? [], isr: p?.isr ?? [] };
  };
  await waitFor(async () => (await partition()).isr.length === 3, { timeoutMs: 60_000, what: `${topic} with 3 in-sync replicas` });
  return { kafka, admin, topic, partition };
}

/** `count` senders, each sending one message at a time with acks from all in-sync replicas until stopped. */
function startSenders(producer: ReturnType<typeof createOutboxProducer>, topic: string, count: number) {
  const acknowledged: Acknowledged[] = [];
  const failures: Error[] = [];
  let next = 0;
  let sending = true;
  const running = Array.from({ length: count }, async () => {
    while (sending) {
      const value = `m${next++}`;
      try {
        const [meta] = await producer.send({ topic, acks: -1, messages: [{ key: value, value }] });
        acknowledged.push({ value, offset: meta?.baseOffset ?? meta?.offset ?? '-1', at: Date.now() });
      } catch (err) {
        failures.push(err as Error);
        await sleep(200);
      }
    }
  });
  return {
    failures,
    stop: async (): Promise<{ acknowledged: Acknowledged[]; failures: Error[] }> => {
      sending = false;
      await Promise.all(running);
      return { acknowledged, failures };
    },
  };
}

/** The broker's error code behind a failed send (kafkajs wraps it in its retry errors), if any. */
function refusal(err: unknown): string | undefined {
  for (let current: unknown = err, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    const { type } = current as { type?: unknown };
    if (typeof type === 'string') return type;
  }
  return undefined;
}
