/**
 * The coalescing producer's own logic, with a stand-in for kafkajs' `sendBatch` (the real broker is
 * in test/integration/coalescing-producer.test.ts): batching within the linger window, the size
 * bound, each caller's offset, failures, back-pressure, options.
 */
import type { PartitionMetadata, ProducerBatch, RecordMetadata } from 'kafkajs';
import { OutboxError } from '../../domain/outbox';
import { CoalescingProducer, SendWithdrawnError, cachedPartitions } from '../../workers/kafka/coalescing-producer';

const partitions: PartitionMetadata[] = [0, 1, 2].map((partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }));

/** Answers like a broker: per topic-partition, a base offset that grows with what it received. */
function fakeBroker(options: { fail?: (call: number) => Error | undefined; hold?: () => Promise<void> } = {}) {
  const next = new Map<string, number>();
  const calls: ProducerBatch[] = [];
  return {
    calls,
    sendBatch: async (batch: ProducerBatch): Promise<RecordMetadata[]> => {
      calls.push(batch);
      await options.hold?.();
      const failure = options.fail?.(calls.length);
      if (failure) throw failure;
      const results: RecordMetadata[] = [];
      for (const { topic, messages } of batch.topicMessages ?? []) {
        const counts = new Map<number, number>();
        for (const m of messages) counts.set(m.partition ?? -1, (counts.get(m.partition ?? -1) ?? 0) + 1);
        for (const [partition, count] of counts) {
          const slot = `${topic}/${partition}`;
          const base = next.get(slot) ?? 0;
          next.set(slot, base + count);
          results.push({ topicName: topic, partition, errorCode: 0, baseOffset: String(base) });
        }
      }
      return results;
    },
  };
}

const send = (p: CoalescingProducer, key: string, topic = 't') => p.send({ topic, acks: -1, messages: [{ key, value: key }] });

describe('CoalescingProducer', () => {
  it('sends concurrent messages in one request and gives each caller its own partition and offset', async () => {
    const broker = fakeBroker();
    const producer = new CoalescingProducer(broker, { lingerMs: 20, partitionsOf: async () => partitions });
    const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`);
    const results = await Promise.all(keys.map((k) => send(producer, k)));
    expect(broker.calls).toHaveLength(1);
    expect(producer.stats).toEqual({ requests: 1, messages: 30 });
    const sent = broker.calls[0]?.topicMessages?.[0]?.messages ?? [];
    // Every caller's offset is the place of its message within its partition's run in the request.
    const expected = new Map<string, string>();
    const perPartition = new Map<number, number>();
    for (const m of sent) {
      const index = perPartition.get(m.partition ?? -1) ?? 0;
      perPartition.set(m.partition ?? -1, index + 1);
      expected.set(String(m.key), `${m.partition}:${index}`);
    }
    expect(perPartition.size).toBeGreaterThan(1);
    results.forEach((r, i) => expect(`${r[0]?.partition}:${r[0]?.baseOffset}`).toBe(expected.get(keys[i] as string)));
  });

  it('keeps a key on one partition, as kafkajs’ default partitioner does', async () => {
    const broker = fakeBroker();
    const producer = new CoalescingProducer(broker, { lingerMs: 0, partitionsOf: async () => partitions });
    const a = await send(producer, 'order-7');
    const b = await send(producer, 'order-7');
    expect(a[0]?.partition).toBe(b[0]?.partition);
    expect(Number(b[0]?.baseOffset)).toBe(Number(a[0]?.baseOffset) + 1);
  });

  it('bounds a request at maxBatch messages', async () => {
    const broker = fakeBroker();
    const producer = new CoalescingProducer(broker, { lingerMs: 50, maxBatch: 10, partitionsOf: async () => partitions });
    await Promise.all(Array.from({ length: 25 }, (_, i) => send(producer, `k${i}`)));
    expect(broker.calls.map((c) => c.topicMessages?.[0]?.messages.length)).toEqual([10, 10, 5]);
  });

  it('never splits the messages of one send across requests, even past maxBatch', async () => {
    const broker = fakeBroker();
    const producer = new CoalescingProducer(broker, { lingerMs: 20, maxBatch: 5, partitionsOf: async () => partitions });
    const run = (key: string, n: number) => producer.send({ topic: 't', acks: -1, messages: Array.from({ length: n }, (_, i) => ({ key, value: `${key}-${i}` })) });
    const [a, b, c] = await Promise.all([run('a', 3), run('b', 4), run('c', 7)]);
    const sizes = broker.calls.map((call) => call.topicMessages?.[0]?.messages.length);
    expect(sizes).toEqual([3, 4, 7]); // 3+4 > 5: b waits for the next request; c (7 > 5) goes alone
    expect([a, b, c].map((r) => r.length)).toEqual([3, 4, 7]);
    const first = Number(c[0]?.baseOffset);
    expect(c.map((m) => Number(m.baseOffset))).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => first + i)); // one key, one partition, in order
  });

  it('groups topics in one request', async () => {
    const broker = fakeBroker();
    const producer = new CoalescingProducer(broker, { lingerMs: 20, partitionsOf: async () => partitions });
    await Promise.all([send(producer, 'a', 'one'), send(producer, 'b', 'two'), send(producer, 'c', 'one')]);
    expect(broker.calls).toHaveLength(1);
    expect(broker.calls[0]?.topicMessages?.map((t) => [t.topic, t.messages.length])).toEqual([['one', 2], ['two', 1]]);
  });

  it('fails every send of a failed request, and the next request goes on', async () => {
    const broker = fakeBroker({ fail: (call) => (call === 1 ? new Error('broker gone') : undefined) });
    const producer = new CoalescingProducer(broker, { lingerMs: 10, partitionsOf: async () => partitions });
    const first = await Promise.allSettled([send(producer, 'a'), send(producer, 'b')]);
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await expect(send(producer, 'c')).resolves.toHaveLength(1);
  });

  it('makes senders wait while maxQueued messages are queued (back-pressure), and loses none', async () => {
    let release: () => void = () => undefined;
    let held = new Promise<void>((resolve) => (release = resolve));
    const broker = fakeBroker({ hold: () => held });
    const producer = new CoalescingProducer(broker, { lingerMs: 0, maxBatch: 2, maxQueued: 2, partitionsOf: async () => partitions });
    const sends = Array.from({ length: 7 }, (_, i) => send(producer, `k${i}`));
    await new Promise((resolve) => setTimeout(resolve, 30));
    // One request (2 messages) in flight, 2 queued; the other 3 senders wait for room.
    expect(broker.calls).toHaveLength(1);
    const opened = held;
    held = Promise.resolve();
    release();
    await opened;
    const results = await Promise.all(sends);
    expect(results.every((r) => r.length === 1)).toBe(true);
    expect(broker.calls.reduce((n, c) => n + (c.topicMessages?.[0]?.messages.length ?? 0), 0)).toBe(7);
    expect(Math.max(...broker.calls.map((c) => c.topicMessages?.[0]?.messages.length ?? 0))).toBeLessThanOrEqual(2);
  });

  it('withdraws a send whose signal aborts while it waits (Kafka never gets it), and tells when a send leaves; one already in a request ends with that request', async () => {
    // Arrange: the first request is held in flight; the second send waits behind it.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const broker = fakeBroker({ hold: () => held });
    const producer = new CoalescingProducer(broker, { lingerMs: 0, partitionsOf: async () => partitions });
    const [inFlight, waiting] = [new AbortController(), new AbortController()];
    const sentAt: number[] = [];
    const first = producer.send({ topic: 't', acks: -1, messages: [{ key: 'a', value: 'a' }] }, { signal: inFlight.signal, onSent: (at) => sentAt.push(at) });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second = producer.send({ topic: 't', acks: -1, messages: [{ key: 'b', value: 'b' }, { key: 'c', value: 'c' }] }, { signal: waiting.signal, onSent: (at) => sentAt.push(at) });
    await new Promise((resolve) => setTimeout(resolve, 20));

    // Act
    inFlight.abort(new Error('attempt ended'));
    waiting.abort(new Error('attempt ended'));
    release();

    // Assert
    await expect(second).rejects.toBeInstanceOf(SendWithdrawnError);
    await expect(first).resolves.toHaveLength(1);
    expect(sentAt).toHaveLength(1);
    expect(broker.calls.flatMap((c) => c.topicMessages?.flatMap((t) => t.messages.map((m) => String(m.key))) ?? [])).toEqual(['a']);
    await expect(producer.send({ topic: 't', acks: -1, messages: [{ value: 'x' }] }, { signal: waiting.signal })).rejects.toBeInstanceOf(SendWithdrawnError);
  });

  it('a message the broker refuses for good (too large) fails alone: the sends that shared its request go again on their own', async () => {
    // Arrange: the broker refuses any request that carries the message keyed "big".
    const tooLarge = Object.assign(new Error('The request included a message larger than the max message size the server will accept'), {
      name: 'KafkaJSProtocolError',
      type: 'MESSAGE_TOO_LARGE',
      retriable: false,
    });
    let carriesBig = false;
    const broker = fakeBroker({ fail: () => (carriesBig ? tooLarge : undefined) });
    const producer = new CoalescingProducer(
      { sendBatch: (batch) => ((carriesBig = (batch.topicMessages ?? []).some((t) => t.messages.some((m) => String(m.key) === 'big'))), broker.sendBatch(batch)) },
      { lingerMs: 20, partitionsOf: async () => partitions },
    );

    // Act: three sends coalesced into one request.
    const results = await Promise.allSettled(['ok-1', 'big', 'ok-2'].map((key) => send(producer, key)));

    // Assert
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(broker.calls.map((c) => c.topicMessages?.[0]?.messages.length)).toEqual([3, 1, 1, 1]);
  });

  it('refuses bad options and acks other than -1 with INVALID_CONFIG', async () => {
    const broker = fakeBroker();
    expect(() => new CoalescingProducer(broker, { lingerMs: -1, partitionsOf: async () => partitions })).toThrow(OutboxError);
    expect(() => new CoalescingProducer(broker, { lingerMs: 1, maxBatch: 0, partitionsOf: async () => partitions })).toThrow(/maxBatch/);
    const producer = new CoalescingProducer(broker, { lingerMs: 1, partitionsOf: async () => partitions });
    await expect(producer.send({ topic: 't', acks: 1, messages: [{ value: 'x' }] })).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
  });
});

describe('cachedPartitions', () => {
  const grown = [...partitions, { partitionId: 3, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }];
  let now = 0;
  beforeEach(() => {
    now = 1_000;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
  });
  afterEach(() => jest.restoreAllMocks());

  /** cachedPartitions over a broker whose metadata answers each wait until the test lets them go. */
  function cached() {
    const answers: Array<{ resolve: (p: PartitionMetadata[]) => void; reject: (err: Error) => void }> = [];
    const fetch = () => new Promise<PartitionMetadata[]>((resolve, reject) => answers.push({ resolve, reject }));
    return { answers, partitionsOf: cachedPartitions(fetch, 30_000) };
  }

  it('asks the broker once while the partitions are fresh, then again in the background while the cached ones go on serving (a send never waits for it)', async () => {
    const { answers, partitionsOf } = cached();
    const first = partitionsOf('t');
    answers[0]?.resolve(partitions);
    await expect(first).resolves.toBe(partitions);
    now += 10_000;
    await expect(partitionsOf('t')).resolves.toBe(partitions);
    expect(answers).toHaveLength(1);
    now += 25_000;
    // Stale: served at once while the broker is asked again; one refresh at a time.
    await expect(partitionsOf('t')).resolves.toBe(partitions);
    await expect(partitionsOf('t')).resolves.toBe(partitions);
    expect(answers).toHaveLength(2);
    answers[1]?.resolve(grown);
    await new Promise((resolve) => setImmediate(resolve));
    await expect(partitionsOf('t')).resolves.toBe(grown);
    expect(answers).toHaveLength(2);
  });

  it('drops a topic whose fetch failed, so the next send asks the broker itself and meets the error', async () => {
    const { answers, partitionsOf } = cached();
    const first = partitionsOf('t');
    answers[0]?.reject(new Error('broker down'));
    await expect(first).rejects.toThrow('broker down');
    const second = partitionsOf('t');
    expect(answers).toHaveLength(2);
    answers[1]?.resolve(partitions);
    await expect(second).resolves.toBe(partitions);
    now += 31_000;
    await expect(partitionsOf('t')).resolves.toBe(partitions);
    answers[2]?.reject(new Error('broker down'));
    await new Promise((resolve) => setImmediate(resolve));
    const fourth = partitionsOf('t');
    expect(answers).toHaveLength(4);
    answers[3]?.reject(new Error('still down'));
    await expect(fourth).rejects.toThrow('still down');
  });
});
