import type { Consumer, Kafka } from 'kafkajs';
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
}

/** An independent reader of a topic: a consumer group of its own, from the beginning. */
export class KafkaCollector {
  readonly messages: CollectedMessage[] = [];
  private consumer: Consumer | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
  ) {}

  async start(): Promise<void> {
    this.consumer = this.kafka.consumer({ groupId: uniqueName('collector'), maxWaitTimeInMs: 100 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      eachMessage: async ({ partition, message }) => {
        this.messages.push({
          partition,
          offset: message.offset,
          key: message.key?.toString() ?? null,
          value: message.value?.toString() ?? null,
          cloudEvent: readCloudEventHeaders(message.headers ?? {}),
          timestamp: Number(message.timestamp),
          receivedAt: Date.now(),
        });
      },
    });
  }

  /** Messages carrying the given event id. */
  withEventId(id: string): CollectedMessage[] {
    return this.messages.filter((m) => m.cloudEvent.id === id);
  }

  /** Waits until every id was received at least once. */
  async waitForEventIds(ids: readonly string[], timeoutMs = 30_000): Promise<void> {
    await waitFor(() => ids.every((id) => this.messages.some((m) => m.cloudEvent.id === id)), {
      timeoutMs,
      what: `${ids.length} event ids to reach the topic ${this.topic}`,
    });
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}
