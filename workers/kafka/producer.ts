import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { errorChain } from '../../domain/outbox/error-chain';
import { stopIdleRequestQueueTimers } from './request-queue-idle';

// Every producer and client of the process shares kafkajs' request queue: see request-queue-idle.ts.
stopIdleRequestQueueTimers();

/**
 * The producer the outbox publishes with: acks from all in-sync replicas (set on each send), one
 * request in flight (a retried request never overtakes a later one, so per-partition order holds),
 * never creating topics, and few retries of its own: Temporal's retry policy is the one in charge.
 *
 * Not idempotent, on purpose. kafkajs 2.2.4's idempotent producer gives a partition's sequence number
 * back after any failed request, including a client-side timeout after which the broker still wrote
 * the batch; the next batch (another event's, from a concurrent send or the next one) then reuses
 * that sequence, and the broker, taking it for a retry of the batch it has, acknowledges it with that
 * batch's offset and never writes it: an event marked published that Kafka never received
 * (test/integration/kafka-producer.test.ts reproduces it). Without idempotence a retried batch that
 * had been written is written again: a duplicate with the same event id, which at-least-once
 * delivery and the inbox helper already allow for, and every acknowledgement names a real write.
 */
export function createOutboxProducer(kafka: Kafka, options: { retries?: number } = {}): Producer {
  return reconnectingWhenWedged(
    kafka.producer({
      idempotent: false,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: options.retries ?? 2, initialRetryTime: RETRY_INITIAL_MS, maxRetryTime: RETRY_MAX_MS },
    }),
  );
}

/**
 * kafkajs 2.2.4 keeps a broker whose connection opened while the broker did not answer its
 * ApiVersions request (frozen, overloaded, behind a slow link) as connected but without the protocol
 * versions it needs: every request to it then fails with "Broker not connected", for as long as that
 * connection stays open (the broker closes it after 10 idle minutes). The cold CI run of 2b7b8c1 met
 * it: after a Kafka outage, a restart, a freeze and a slow minute, five fault-harness lanes' workers
 * failed every publish that way until the run ended. A send that fails so reconnects the producer
 * (its connections closed and opened again); sends wait for that, and the failed one is retried as
 * any other failed attempt.
 */
function reconnectingWhenWedged(producer: Producer): Producer {
  let reconnecting: Promise<void> | undefined;
  let disconnected = false;
  const reconnect = (): void => {
    if (disconnected) return;
    reconnecting ??= producer
      .disconnect()
      .then(() => (disconnected ? undefined : producer.connect()))
      .catch(() => undefined)
      .finally(() => (reconnecting = undefined));
  };
  const guarded =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (reconnecting !== undefined) await reconnecting;
      try {
        return await fn(...args);
      } catch (err) {
        if (isWedgedBroker(err)) reconnect();
        throw err;
      }
    };
  return {
    ...producer,
    send: guarded(producer.send),
    sendBatch: guarded(producer.sendBatch),
    connect: async () => {
      disconnected = false;
      await producer.connect();
    },
    disconnect: async () => {
      disconnected = true;
      await reconnecting;
      await producer.disconnect();
    },
  };
}

/** "Broker not connected", as kafkajs throws it or wraps it in its retry errors. */
function isWedgedBroker(err: unknown): boolean {
  return errorChain(err, { originalError: true }).some((e) => e.message.includes('Broker not connected'));
}

const RETRY_INITIAL_MS = 100;
const RETRY_MAX_MS = 2_000;

/** kafkajs' connection and SASL authentication timeouts (its defaults), which a try may spend before its request is written. */
const CONNECT_AND_AUTHENTICATE_MS = 1_000 + 10_000;

/**
 * The longest a send of `createOutboxProducer(kafka, { retries })` stays in flight once handed to it,
 * on a client whose request timeout is `requestTimeoutMs`: every try connecting, authenticating and
 * timing out, plus the longest backoff between tries (kafkajs waits at most RETRY_MAX_MS, with up to
 * 20% jitter), and a second. After it, no acknowledgement of that send can come.
 */
export function sendWindowMs(requestTimeoutMs: number, retries: number): number {
  return (retries + 1) * (requestTimeoutMs + CONNECT_AND_AUTHENTICATE_MS) + retries * RETRY_MAX_MS * 1.2 + 1_000;
}
