// workers/kafka/: the outbox's Kafka clients: the producer (acks from all in-sync replicas, one request
// in flight), the coalescing queue in front of it, and the reader of a record at a position.
import { Partitioners, type Message, type PartitionMetadata, type Producer, type ProducerRecord, type RecordMetadata } from 'kafkajs';
import { OutboxError, OutboxErrorCode } from '../../domain/outbox';
import { errorChain } from '../../domain/outbox/error-chain';

export interface CoalescingProducerOptions {
  /** How long the first queued message waits for others to join its batch, in ms. */
  lingerMs: number;
  /** Most messages in one request. @default 200 */
  maxBatch?: number;
  /**
   * Most messages waiting to be sent; a `send()` beyond it waits for room (back-pressure on the
   * publishing activities, never on the domain's transactions, which only write the store). @default 2000
   */
  maxQueued?: number;
  /** The partitions of a topic (the worker asks the broker through its admin client, cached). */
  partitionsOf: (topic: string) => Promise<PartitionMetadata[]>;
}

interface Pending {
  /** The messages of one `send()` call share a group: they are never split across requests. */
  group: number;
  topic: string;
  message: Message & { partition: number };
  timeout: number;
  resolve: (metadata: RecordMetadata[]) => void;
  reject: (err: unknown) => void;
  onSent?: (at: number) => void;
}

/** What a caller of `send` may add: a way to withdraw its messages while they wait, and word of when they leave. */
export interface SendOptions {
  /**
   * Aborting it withdraws the messages while they are still queued: the send rejects with a
   * SendWithdrawnError and nothing of them reaches Kafka. Messages already in a request are not
   * withdrawn (a request cannot be called back): the send then ends with that request.
   */
  signal?: AbortSignal;
  /** Called once, with `Date.now()`, when the request carrying the messages is handed to kafkajs. */
  onSent?: (at: number) => void;
}

/** The messages of a send were withdrawn (its signal aborted) before any request carried them: Kafka has none of them. */
export class SendWithdrawnError extends Error {
  override readonly name = 'SendWithdrawnError';
}

/** Anything the outbox publishes through: a kafkajs producer, or a CoalescingProducer, which also takes SendOptions. */
export interface OutboxSender {
  send(record: ProducerRecord, options?: SendOptions): Promise<RecordMetadata[]>;
}

/**
 * Coalesces concurrent one-message sends (one per publish activity) into `sendBatch` requests:
 * the first message waits at most `lingerMs` for others, a batch holds at most `maxBatch`, and while
 * a request is in flight the next batch fills (the producer has one request in flight, so a retried
 * request never overtakes a later one). kafkajs has no linger of its own.
 *
 * Each caller gets its own message's partition and offset: partitions are chosen here with kafkajs'
 * default partitioner (murmur2 of the key, as Java clients do), so a message's offset is its
 * partition's base offset plus its place in that partition's run. A failed request fails every send
 * in it; each caller (a Temporal activity) then retries on its own.
 */
export class CoalescingProducer implements OutboxSender {
  private readonly queue: Pending[] = [];
  private readonly waitingForRoom: Array<() => void> = [];
  private readonly partitioner = Partitioners.DefaultPartitioner();
  private readonly maxBatch: number;
  private readonly maxQueued: number;
  private timer: NodeJS.Timeout | undefined;
  private nextGroup = 0;
  private flushing = false;
  /** Requests sent and messages they carried (for the benchmark and tests). */
  readonly stats = { requests: 0, messages: 0 };

  constructor(
    private readonly producer: Pick<Producer, 'sendBatch'>,
    private readonly options: CoalescingProducerOptions,
  ) {
    this.maxBatch = options.maxBatch ?? 200;
    this.maxQueued = options.maxQueued ?? 2000;
    for (const [name, value] of [['lingerMs', options.lingerMs], ['maxBatch', this.maxBatch], ['maxQueued', this.maxQueued]] as const) {
      if (!Number.isSafeInteger(value) || value < (name === 'lingerMs' ? 0 : 1)) {
        throw new OutboxError(OutboxErrorCode.invalidConfig, `coalescing producer option "${name}" must be a ${name === 'lingerMs' ? 'non-negative' : 'positive'} integer, got ${String(value)}`);
      }
    }
  }

  /**
   * Sends the record's messages, resolving with each message's own metadata, in order. The messages
   * of one call always leave in the same request (so, in one partition, together or not at all), even
   * when they are more than `maxBatch`. See SendOptions for withdrawing them while they wait.
   */
  async send(record: ProducerRecord, options: SendOptions = {}): Promise<RecordMetadata[]> {
    if (record.acks !== undefined && record.acks !== -1) {
      throw new OutboxError(OutboxErrorCode.invalidConfig, `the coalescing producer sends with acks=-1 only, got acks=${record.acks}`);
    }
    const { signal } = options;
    const withdrawn = (): SendWithdrawnError => new SendWithdrawnError(`send to ${record.topic} withdrawn before it was sent: ${String(signal?.reason ?? 'aborted')}`);
    if (signal?.aborted) throw withdrawn();
    const partitionMetadata = await this.options.partitionsOf(record.topic);
    if (signal?.aborted) throw withdrawn();
    const group = this.nextGroup++;
    const results: Array<Promise<RecordMetadata[]>> = [];
    let sent = false;
    const onSent = (at: number): void => {
      if (sent) return;
      sent = true;
      options.onSent?.(at);
    };
    const items = record.messages.map((message) => {
      const partition = message.partition ?? this.partitioner({ topic: record.topic, partitionMetadata, message });
      let item!: Pending;
      results.push(
        new Promise<RecordMetadata[]>((resolve, reject) => {
          item = { group, topic: record.topic, message: { ...message, partition }, timeout: record.timeout ?? 30_000, resolve, reject, onSent };
        }),
      );
      return item;
    });
    const withdraw = (): void => {
      // Only while none of them has left: a group is taken whole.
      if (sent || !this.queue.includes(items[0] as Pending)) return;
      this.queue.splice(0, this.queue.length, ...this.queue.filter((q) => q.group !== group));
      for (const item of items) item.reject(withdrawn());
      for (const wake of this.waitingForRoom.splice(0)) wake();
    };
    signal?.addEventListener('abort', withdraw, { once: true });
    try {
      await this.enqueue(items);
      if (signal?.aborted) withdraw();
      return (await Promise.all(results)).flat();
    } finally {
      signal?.removeEventListener('abort', withdraw);
    }
  }

  private async enqueue(items: Pending[]): Promise<void> {
    while (this.queue.length > 0 && this.queue.length + items.length > this.maxQueued) await new Promise<void>((resolve) => this.waitingForRoom.push(resolve));
    this.queue.push(...items);
    if (this.queue.length >= this.maxBatch) this.flushSoon(0);
    else this.flushSoon(this.options.lingerMs);
  }

  /** Up to maxBatch queued messages, whole groups only (a group larger than maxBatch goes alone). */
  private takeBatch(): Pending[] {
    let n = 0;
    while (n < this.queue.length) {
      const group = this.queue[n]?.group;
      let end = n;
      while (end < this.queue.length && this.queue[end]?.group === group) end += 1;
      if (n > 0 && end > this.maxBatch) break;
      n = end;
      if (n >= this.maxBatch) break;
    }
    return this.queue.splice(0, n);
  }

  private flushSoon(delayMs: number): void {
    if (this.flushing) return; // the running flush takes what is queued when its request returns
    if (this.timer !== undefined) {
      if (delayMs > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delayMs);
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.takeBatch();
        for (const wake of this.waitingForRoom.splice(0)) wake(); // each re-checks the room it needs
        await this.sendOne(batch);
      }
    } finally {
      this.flushing = false;
    }
  }

  private async sendOne(batch: Pending[]): Promise<void> {
    const byTopic = new Map<string, Pending[]>();
    for (const item of batch) {
      const items = byTopic.get(item.topic);
      if (items) items.push(item);
      else byTopic.set(item.topic, [item]);
    }
    this.stats.requests += 1;
    this.stats.messages += batch.length;
    const at = Date.now();
    for (const item of batch) item.onSent?.(at);
    let results: RecordMetadata[];
    try {
      results = await this.producer.sendBatch({
        acks: -1,
        timeout: Math.max(...batch.map((b) => b.timeout)),
        topicMessages: [...byTopic].map(([topic, items]) => ({ topic, messages: items.map((i) => i.message) })),
      });
    } catch (err) {
      const groups = [...new Set(batch.map((item) => item.group))].map((group) => batch.filter((item) => item.group === group));
      if (groups.length > 1 && refusedForGood(err)) {
        // The broker refuses one of them for good (too large for the topic, invalid): the others
        // must not fail with it. Each send goes again alone, and fails or passes on its own.
        for (const group of groups) await this.sendOne(group);
        return;
      }
      for (const item of batch) item.reject(err);
      return;
    }
    const seen = new Map<string, number>();
    for (const item of batch) {
      const slot = `${item.topic}\0${item.message.partition}`;
      const index = seen.get(slot) ?? 0;
      seen.set(slot, index + 1);
      const result = results.find((r) => r.topicName === item.topic && r.partition === item.message.partition);
      if (result === undefined) {
        item.reject(new OutboxError(OutboxErrorCode.publishFailed, `Kafka returned no result for ${item.topic}/${item.message.partition}`));
        continue;
      }
      const base = result.baseOffset ?? result.offset;
      if (base === undefined) {
        item.reject(new OutboxError(OutboxErrorCode.publishFailed, `Kafka acknowledged ${item.topic}/${item.message.partition} without an offset`));
        continue;
      }
      const offset = (BigInt(base) + BigInt(index)).toString();
      item.resolve([{ ...result, baseOffset: offset, offset }]);
    }
  }
}

/** A broker error kafkajs calls non-retriable (MESSAGE_TOO_LARGE, INVALID_RECORD, ...), the error or one of its causes. */
function refusedForGood(err: unknown): boolean {
  return errorChain(err).some((e) => {
    const { retriable, type } = e as { retriable?: unknown; type?: unknown };
    return e.name === 'KafkaJSProtocolError' && typeof type === 'string' && retriable === false;
  });
}

/**
 * Caches a topic's partitions (from the broker) for the coalescing producer. Once `ttlMs` old they
 * are fetched again in the background while the cached ones go on serving, so a send never waits
 * for that round trip (one send in every 30 s did). A fetch that fails drops the entry: the next
 * send asks the broker itself, and meets the error.
 */
export function cachedPartitions(fetch: (topic: string) => Promise<PartitionMetadata[]>, ttlMs = 30_000): (topic: string) => Promise<PartitionMetadata[]> {
  interface Entry {
    at: number;
    partitions: Promise<PartitionMetadata[]>;
    refreshing: boolean;
  }
  const cache = new Map<string, Entry>();
  const dropIfStill = (topic: string, entry: Entry): void => {
    if (cache.get(topic) === entry) cache.delete(topic);
  };
  return (topic) => {
    const hit = cache.get(topic);
    if (hit === undefined) {
      const entry: Entry = { at: Date.now(), partitions: fetch(topic), refreshing: false };
      cache.set(topic, entry);
      entry.partitions.catch(() => dropIfStill(topic, entry));
      return entry.partitions;
    }
    if (!hit.refreshing && Date.now() - hit.at >= ttlMs) {
      hit.refreshing = true;
      fetch(topic).then(
        (partitions) => {
          if (cache.get(topic) === hit) cache.set(topic, { at: Date.now(), partitions: Promise.resolve(partitions), refreshing: false });
        },
        () => dropIfStill(topic, hit),
      );
    }
    return hit.partitions;
  };
}
