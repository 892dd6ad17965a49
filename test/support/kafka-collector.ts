import type { Admin, Consumer, Kafka } from 'kafkajs';
import { readCloudEventHeaders, type ReceivedCloudEvent } from '../../domain/outbox';
import { uniqueName, waitFor } from './servers';

export interface CollectedMessage {
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
  cloudEvent: ReceivedCloudEvent;
  /** The record's timestamp (ms): set by the producing process when it built the record, before the broker wrote it. */
  timestamp: number;
  receivedAt: number;
  /** Which life of the topic it was read from: 0, and one more each time the topic was deleted and created again. */
  incarnation: number;
}

/** Crashes in a row, each restarted by kafkajs with nothing read between them, after which the collector starts over in a new group. */
const CRASH_LOOP = 30;

/**
 * An independent reader of a topic: a consumer group of its own, from the beginning. It records each
 * position of the topic once, and outlives a broker restart: a consumer that crashes for good (kafkajs
 * does not restart it after some errors, e.g. a group coordinator not found while the broker boots) is
 * started again in the same group, and reads on from its committed offsets; one kafkajs keeps
 * restarting without reading anything starts over in a new group.
 */
export class KafkaCollector {
  readonly messages: CollectedMessage[] = [];
  /** The consumer's crashes, and whether kafkajs restarted it itself (shown when a wait fails). */
  readonly crashes: Array<{ at: number; error: string; restartedBy: 'kafkajs' | 'collector' }> = [];
  private readonly seen = new Set<string>();
  /** Its consumer group: a new one when a group's coordinator stays unusable (see CRASH_LOOP). */
  private groupId = uniqueName('collector');
  /** Crashes kafkajs restarted from since the last message read. */
  private crashesSinceProgress = 0;
  private consumer: Consumer | undefined;
  private stopped = false;
  /** The topic is being deleted and created again: nothing is read, and a crashed consumer is not restarted. */
  private betweenLives = false;
  /** A crashed consumer being started again. */
  private restarting: Promise<void> | undefined;
  private incarnation = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
  ) {}

  async start(): Promise<void> {
    // A short session (the broker's least): after a broker restart the coordinator reloads the group
    // with this member in it, and a consumer that comes back as a new member waits for the old one's
    // session to end before it is given partitions (30 s with kafkajs' default). A rebalance this
    // causes costs nothing: positions read again are not recorded twice.
    const consumer = this.kafka.consumer({ groupId: this.groupId, maxWaitTimeInMs: 100, sessionTimeout: 6_000, heartbeatInterval: 1_000 });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      this.crashes.push({ at: Date.now(), error: `${payload.error.name}: ${payload.error.message}`, restartedBy: payload.restart ? 'kafkajs' : 'collector' });
      if (this.stopped || this.betweenLives || consumer !== this.consumer) return;
      this.crashesSinceProgress = payload.restart ? this.crashesSinceProgress + 1 : 0;
      // kafkajs restarting it over and over without reading (a group whose coordinator answered
      // NOT_COORDINATOR for minutes after a broker restart): a new consumer in a new group, from the
      // beginning (positions already read are not recorded twice).
      if (this.crashesSinceProgress >= CRASH_LOOP) {
        this.crashesSinceProgress = 0;
        this.groupId = uniqueName('collector');
        this.restart(consumer);
      } else if (!payload.restart) {
        this.restart(consumer);
      }
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    } catch (err) {
      await consumer.disconnect().catch(() => undefined);
      throw err;
    }
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        this.crashesSinceProgress = 0;
        const position = `${partition}:${message.offset}`;
        if (this.seen.has(position)) return; // read again after a restart, from the last committed offset
        this.seen.add(position);
        this.messages.push({
          partition,
          offset: message.offset,
          key: message.key?.toString() ?? null,
          value: message.value?.toString() ?? null,
          cloudEvent: readCloudEventHeaders(message.headers ?? {}),
          timestamp: Number(message.timestamp),
          receivedAt: Date.now(),
          incarnation: this.incarnation,
        });
      },
    });
  }

  /**
   * A consumer kafkajs gave up on: disconnected, and a new one started in its place (see startAgain).
   */
  private restart(crashed: Consumer): void {
    this.restarting ??= crashed
      .disconnect()
      .catch(() => undefined)
      .then(() => this.startAgain())
      .finally(() => (this.restarting = undefined));
  }

  /**
   * Starts a consumer, tried again (every second, then up to every 5 s) for as long as the collector
   * is not stopped nor between two lives of the topic: a broker down for minutes (the fault harness's
   * outage) must not leave the topic unread for good.
   */
  private async startAgain(): Promise<void> {
    for (let waitMs = 1_000; !this.stopped && !this.betweenLives; waitMs = Math.min(waitMs * 2, 5_000)) {
      try {
        await this.start();
        return;
      } catch (err) {
        this.crashes.push({ at: Date.now(), error: `restart failed: ${err instanceof Error ? err.message : String(err)}`, restartedBy: 'collector' });
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    }
  }

  /**
   * Deletes the topic and creates it again (`create`), with its events possibly still being written:
   * first reads it to the end offsets of that moment (`readTo`, when they were asked; what is
   * published after it and not read went with the deletion), and from then on reads its new life,
   * whose positions start over. Resolves with `readTo` (Infinity when the end was not reached within
   * `timeoutMs`, after `onUnread` was told why) and `at`, when the deletion was done.
   */
  async recreateTopic(admin: Admin, create: () => Promise<void>, options: { timeoutMs: number; onUnread: (err: unknown) => void }): Promise<{ readTo: number; at: number }> {
    const readTo = await this.waitForEnd(admin, options.timeoutMs).catch((err: unknown) => {
      options.onUnread(err);
      return Infinity;
    });
    // Its consumer is stopped before the deletion: a message it fetched from the old life and read
    // after the deletion would be taken for the new life's (its key's order checked against the
    // wrong events, and the inbox expected to apply it). A consumer being restarted gives up first.
    this.betweenLives = true;
    try {
      await this.restarting;
      await this.consumer?.disconnect().catch(() => undefined);
      this.consumer = undefined;
      await admin.deleteTopics({ topics: [this.topic], timeout: 30_000 });
      const at = Date.now();
      this.incarnation += 1;
      this.seen.clear();
      await waitFor(async () => !(await admin.listTopics()).includes(this.topic), { timeoutMs: 60_000, what: `${this.topic} deleted` });
      await create();
      return { readTo, at };
    } finally {
      // In a new group, from the beginning: the old group's committed offsets are positions of the
      // old life, and resuming there skips the new life's first messages once it has as many.
      this.groupId = uniqueName('collector');
      this.betweenLives = false;
      await this.startAgain();
    }
  }

  /**
   * Waits until it has read the topic (its current life) up to the end offsets the broker reports
   * now (asked again while the broker cannot answer, as right after a restart); resolves with the
   * time those end offsets were asked for.
   */
  async waitForEnd(admin: Admin, timeoutMs = 30_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let askedAt = Date.now();
    const reached = (partition: number): number =>
      Math.max(0, ...this.messages.filter((m) => m.incarnation === this.incarnation && m.partition === partition).map((m) => Number(m.offset) + 1));
    try {
      const ends = await waitFor(
        () => {
          askedAt = Date.now();
          return admin.fetchTopicOffsets(this.topic);
        },
        { timeoutMs, intervalMs: 500, what: `the end offsets of ${this.topic}` },
      );
      await waitFor(() => ends.every((e) => reached(e.partition) >= Number(e.high)), { timeoutMs: Math.max(0, deadline - Date.now()), what: `the collector of ${this.topic} to read to its end` });
      return askedAt;
    } catch (err) {
      throw new Error(`${err instanceof Error ? err.message : String(err)}; collector crashes: ${this.crashReport()}`);
    }
  }

  /** The consumer's crashes so far, for a failed wait's message. */
  private crashReport(): string {
    return this.crashes.map((c) => `${new Date(c.at).toISOString()} ${c.error} (restarted by ${c.restartedBy})`).join('; ') || 'none';
  }

  /** Messages carrying the given event id. */
  withEventId(id: string): CollectedMessage[] {
    return this.messages.filter((m) => m.cloudEvent.id === id);
  }

  /** Waits until every id was received at least once; the failure names how many were not, and the consumer's crashes. */
  async waitForEventIds(ids: readonly string[], timeoutMs = 30_000): Promise<void> {
    const missing = (): string[] => {
      const received = new Set(this.messages.map((m) => m.cloudEvent.id));
      return ids.filter((id) => !received.has(id));
    };
    await waitFor(() => missing().length === 0, { timeoutMs, what: `${ids.length} event ids to reach the topic ${this.topic}` }).catch((err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}: ${missing().length} missing (${missing().slice(0, 5).join(', ')}); collector crashes: ${this.crashReport()}`);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.consumer?.disconnect();
  }
}
