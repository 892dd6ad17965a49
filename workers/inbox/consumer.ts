// workers/inbox/: the consumer side's process part, a kafkajs consumer that applies each event's
// effects once through an inbox (domain/inbox), exported as txoutbox/inbox.
import { EventEmitter } from 'node:events';
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { InboxOutcome, InboxStore } from '../../domain/inbox/inbox';
import { parseJson, readCloudEventHeaders, silentLogger, type JsonValue, type Logger, type ReceivedCloudEvent } from '../../domain/outbox';

/** One received outbox event, as the consumer's handler sees it. */
export interface InboxEvent extends ReceivedCloudEvent {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  payload: JsonValue;
}

export interface InboxConsumerOptions<Tx> {
  kafka: Kafka;
  groupId: string;
  topics: string[];
  /** The inbox, in the same database as the consumer's own effects. */
  inbox: InboxStore<Tx>;
  /** Name of this consumer in the inbox (one row per consumer and event). @default groupId */
  consumerName?: string;
  /** The consumer's effects, run in the inbox's transaction `tx`; throw to retry the message. */
  handle: (event: InboxEvent, tx: Tx) => Promise<void>;
  /** @default false: only messages produced after the group's first start */
  fromBeginning?: boolean;
  logger?: Logger;
}

export interface InboxConsumerEvents {
  /** A message was handled: applied now, or found in the inbox and skipped. */
  handled: [{ eventId: string; outcome: InboxOutcome }];
}

export interface RunningInboxConsumer {
  shutdown(): Promise<void>;
}

/**
 * A kafkajs consumer whose handler runs exactly once per event id: each message's effects and its
 * inbox row are committed in one transaction, so a redelivered event (same `ce_id`) is skipped, also
 * when two consumer instances receive it at the same moment.
 */
export class InboxConsumer<Tx> extends EventEmitter<InboxConsumerEvents> {
  private consumer: Consumer | undefined;
  private stopping = false;

  constructor(private readonly options: InboxConsumerOptions<Tx>) {
    super();
  }

  async start(): Promise<RunningInboxConsumer> {
    await this.open();
    return {
      shutdown: async () => {
        this.stopping = true;
        if (this.restartTimer) clearTimeout(this.restartTimer);
        await this.consumer?.disconnect();
      },
    };
  }

  private restartTimer: NodeJS.Timeout | undefined;

  /** A kafkajs consumer, connected, subscribed and running; replaced if it crashes for good. */
  private async open(): Promise<void> {
    const { kafka, groupId, topics, inbox, handle, logger = silentLogger } = this.options;
    const consumerName = this.options.consumerName ?? groupId;
    // After a crash (the broker restarting), kafkajs restarts the consumer on a timer; once shutdown
    // began it must not, or it reconnects after its disconnect and outlives its owner.
    const consumer = kafka.consumer({ groupId, retry: { restartOnFailure: async () => !this.stopping } });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      logger.error('inbox consumer crashed', { groupId, error: payload.error, restart: payload.restart });
      // kafkajs gives up on some crashes (restart: false), e.g. after a broker was frozen: a consumer
      // that stops for good would leave events unapplied, so a fresh one takes over.
      if (!payload.restart && !this.stopping) this.replaceLater(consumer, 1_000);
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics, fromBeginning: this.options.fromBeginning ?? false });
      await consumer.run({
        eachMessage: async ({ topic, partition, message }) => {
          const event = toInboxEvent(topic, partition, message);
          if (event.id === '') {
            logger.warn('message without ce_id skipped: not an outbox event', { topic, partition, offset: message.offset });
            return;
          }
          const outcome = await inbox.applyOnce(consumerName, event.id, (tx) => handle(event, tx));
          logger.debug(outcome === 'applied' ? 'event applied' : 'event already applied: skipped', { eventId: event.id, type: event.type });
          this.emit('handled', { eventId: event.id, outcome });
        },
      });
    } catch (err) {
      await consumer.disconnect().catch(() => undefined);
      throw err;
    }
  }

  private replaceLater(crashed: Consumer, delayMs: number): void {
    if (this.restartTimer) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void (async () => {
        await crashed.disconnect().catch(() => undefined);
        if (this.stopping) return;
        await this.open().catch((err: unknown) => {
          (this.options.logger ?? silentLogger).error('inbox consumer could not restart; trying again', { error: err });
          if (!this.stopping) this.replaceLater(crashed, Math.min(delayMs * 2, 30_000));
        });
      })();
    }, delayMs);
  }
}

export function createInboxConsumer<Tx>(options: InboxConsumerOptions<Tx>): InboxConsumer<Tx> {
  return new InboxConsumer(options);
}

function toInboxEvent(topic: string, partition: number, message: KafkaMessage): InboxEvent {
  const ce = readCloudEventHeaders(message.headers ?? {});
  const value = message.value?.toString() ?? 'null';
  return { ...ce, topic, partition, offset: message.offset, key: message.key?.toString() ?? null, payload: parseJson(value) };
}
