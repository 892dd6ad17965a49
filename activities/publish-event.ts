import { ApplicationFailure, Context } from '@temporalio/activity';
import { context } from '@opentelemetry/api';
import type { RecordMetadata } from 'kafkajs';
import { activeOr, eventIdTime, injectTraceContext, inSpan, isOutboxError, OutboxErrorCode, OutboxStatus, silentLogger, toKafkaMessage, type EventRegistry, type Logger, type MarkResult, type OutboxEvent, type OutboxEventStore } from '../domain/outbox';
import { errorChain } from '../domain/outbox/error-chain';
import { SendWithdrawnError, type OutboxSender } from '../workers/kafka/coalescing-producer';
import type { KafkaPositionReader } from '../workers/kafka/position-reader';
import { sendWindowMs } from '../workers/kafka/producer';
import type { OutboxMetrics } from '../workers/process/metrics';
import type { PublishHeartbeat, PublishReceipt } from '../workflows/types';
import { recordVerified } from './record-publication';

/**
 * kafkajs errors that say the send can never pass as things are (client and broker do not fit, the
 * credentials are refused). Not on this list and not a broker error marked non-retriable: retried.
 * kafkajs also marks passing conditions non-retriable (its lock and request timeouts while a broker
 * hangs, its wrappers around a refused connection), so `retriable: false` alone decides nothing.
 */
const KAFKAJS_FATAL = new Set(['KafkaJSSASLAuthenticationError', 'KafkaJSServerDoesNotSupportApiKey', 'KafkaJSNotImplemented', 'KafkaJSUnsupportedMagicByteInMessageSet', 'KafkaJSInvariantViolation']);

export function isFatal(e: Error): boolean {
  const { retriable, type } = e as { retriable?: unknown; type?: unknown };
  if (KAFKAJS_FATAL.has(e.name)) return true;
  // A broker's error code it calls non-retriable (MESSAGE_TOO_LARGE, TOPIC_AUTHORIZATION_FAILED, ...).
  if (e.name === 'KafkaJSProtocolError' && typeof type === 'string' && retriable === false) return true;
  // kafkajs refusing the request itself (bad arguments), not wrapping anything.
  return e.name === 'KafkaJSNonRetriableError' && e.cause === undefined;
}

export interface PublishActivityDeps {
  /** Any adapter: the activity never sees a driver. */
  store: Pick<OutboxEventStore, 'get' | 'markPublished' | 'recordFailure' | 'claimForWorkflow'>;
  /**
   * What it publishes through: the worker's CoalescingProducer over a connected kafkajs producer
   * (`createOutboxProducer`: one request in flight, not idempotent), which lets an attempt withdraw
   * its message while it still waits, and tells when it left.
   */
  producer: OutboxSender;
  /**
   * The longest a request handed to the producer stays in flight, in ms (kafkajs' request timeout
   * times its tries, plus their backoff): after it, no acknowledgement of that send can come.
   * Reported in the attempt's heartbeats, so a workflow whose attempt timed out waits it out before
   * it escalates. @default sendWindowMs(30000, 0): one try of kafkajs' 30 s request timeout (42 s)
   */
  sendWindowMs?: number;
  /**
   * Reads the record at a Kafka position (`createKafkaPositionReader`), when the store says another
   * event is recorded where Kafka acknowledged this one: the record tells whether the write is real.
   * @default none: such an acknowledgement is refused (KAFKA_POSITION_TAKEN) and the event sent again
   */
  positions?: KafkaPositionReader;
  logger?: Logger;
  /**
   * The service's event types: each event is published as the version its type is published as
   * (EventRegistryOptions.publish), upcast from the version it was written as. @default as written
   */
  contracts?: Pick<EventRegistry, 'asPublished'>;
  /** How long Kafka may take to acknowledge, in ms. @default 10000 */
  ackTimeoutMs?: number;
  /**
   * Asks the broker whether a topic exists, to tell "unknown topic" (never passes while topics are not
   * auto-created) from a passing metadata error. @default none: such errors are retried
   */
  topicExists?: (topic: string) => Promise<boolean>;
  clock?: () => Date;
  /** Prometheus metrics to count into; none by default. */
  metrics?: OutboxMetrics;
}

/**
 * The receipt of a publication the store has recorded (partition, offset, time), or null when the
 * store does not say `published`. `alreadyPublished`: nothing was sent by the caller.
 */
export function storedReceipt(event: OutboxEvent, clock: () => Date, alreadyPublished = true): PublishReceipt | null {
  if (event.status !== OutboxStatus.published || event.kafka === null) return null;
  return {
    eventId: event.id,
    topic: event.topic,
    partition: event.kafka.partition,
    offset: event.kafka.offset,
    publishedAt: (event.publishedAt ?? clock()).toISOString(),
    attempts: event.attempts,
    alreadyPublished,
  };
}

/** Failure type of a publication Kafka acknowledged that the store could not record (details: the receipt). */
export const PUBLISHED_NOT_RECORDED = 'PUBLISHED_NOT_RECORDED';
/** Tries at recording a publication within one attempt, backing off from 250 ms. */
const MARK_ATTEMPTS = 3;
const MARK_BACKOFF_MS = 250;

/**
 * Loads the event, skips it if the store already says `published` (Temporal's id deduplication
 * ends with its retention; the store's status does not), publishes it with acks from all in-sync
 * replicas, and records partition, offset and time on the event.
 */
export function createPublishEvent(deps: PublishActivityDeps): (eventId: string, options?: PublishOptions) => Promise<PublishReceipt> {
  const publisher: Publisher = { deps, logger: deps.logger ?? silentLogger, clock: deps.clock ?? (() => new Date()), ackTimeoutMs: deps.ackTimeoutMs ?? 10_000 };
  return async function publishEvent(eventId: string, options: PublishOptions = {}): Promise<PublishReceipt> {
    const ctx = Context.current();
    const bound = boundAttempt(ctx, deps.sendWindowMs ?? sendWindowMs(30_000, 0));
    try {
      return await publishOnce(publisher, eventId, options.replay === true, ctx.info.attempt + (options.priorAttempts ?? 0), bound);
    } finally {
      bound.end();
    }
  };
}

/** How the workflow asks for an attempt. */
export interface PublishOptions {
  /** Publish again on purpose (operator replay), even though the store says `published`. */
  replay?: boolean;
  /** Attempts made before this activity's first (the workflow's local first attempt): the store counts them all. @default 0 */
  priorAttempts?: number;
}

/** What an attempt works with: the activity's dependencies and their defaults. */
interface Publisher {
  deps: PublishActivityDeps;
  logger: Logger;
  clock: () => Date;
  ackTimeoutMs: number;
}

type Fields = { eventId: string; type: string; topic: string; attempt: number };

/** One attempt: the event (unless already published), sent, its acknowledgement checked and recorded. */
async function publishOnce(publisher: Publisher, eventId: string, replay: boolean, attempt: number, bound: AttemptBound): Promise<PublishReceipt> {
  const loaded = await eventToSend(publisher, eventId, replay, attempt);
  if ('receipt' in loaded) return loaded.receipt;
  const { event, fields } = loaded;
  const metadata = await send(publisher, event, fields, bound);
  if (metadata === undefined || metadata.errorCode !== 0) {
    throw ApplicationFailure.retryable(`Kafka answered error code ${metadata?.errorCode ?? 'none'} for ${eventId}`, OutboxErrorCode.publishFailed);
  }
  const offset = metadata.baseOffset ?? metadata.offset;
  if (offset === undefined) {
    // acks=-1 always names an offset; without one the acknowledgement says nothing checkable.
    throw ApplicationFailure.retryable(`Kafka acknowledged ${eventId} without an offset`, OutboxErrorCode.publishFailed);
  }
  const receipt: PublishReceipt = {
    eventId,
    topic: event.topic,
    partition: metadata.partition,
    offset,
    publishedAt: publisher.clock().toISOString(),
    attempts: attempt,
    alreadyPublished: false,
  };
  if (replay) {
    // The store keeps the first publication; the replay is audited by its own workflow and this line.
    publisher.logger.warn('event replayed on purpose (same event id)', { ...fields, partition: receipt.partition, offset: receipt.offset });
    return { ...receipt, replayed: true };
  }
  return recordAcknowledged(publisher, receipt, fields);
}

/**
 * The event to send, claimed for this workflow; or the receipt of its publication when the store
 * says it is published already (not on a replay). Throws when the fast path holds it. The claim
 * answers with the event as it stands: an attempt reads nothing else before it sends.
 */
async function eventToSend({ deps, logger, clock }: Publisher, eventId: string, replay: boolean, attempt: number): Promise<{ event: OutboxEvent; fields: Fields } | { receipt: PublishReceipt }> {
  // A replay sends again on purpose, whatever the store says, and claims nothing.
  const { claimed, event } = replay ? { claimed: false, event: await deps.store.get(eventId) } : await deps.store.claimForWorkflow(eventId);
  if (event === null) {
    throw ApplicationFailure.nonRetryable(`event ${eventId} is not in the outbox store`, OutboxErrorCode.eventNotFound);
  }
  const fields = { eventId, type: event.type, topic: event.topic, attempt };
  if (claimed || replay) return { event, fields };
  const done = storedReceipt(event, clock);
  if (done !== null) {
    logger.info('event already published: not sending it again', fields);
    return { receipt: done };
  }
  // The relay's fast path holds it (a live lease): never two publishers at once. Either it
  // publishes (the next attempt finds it published) or its claim ends and this workflow takes over.
  throw ApplicationFailure.retryable(`event ${eventId} is claimed by the relay's fast path; retrying once that claim ends`, 'CLAIMED_BY_FAST_PATH');
}

/** Sends the event with acks from all in-sync replicas, in a produce span; a failure is recorded on the event and classified. */
async function send(publisher: Publisher, event: OutboxEvent, fields: Fields, bound: AttemptBound): Promise<RecordMetadata | undefined> {
  const { deps, logger, ackTimeoutMs } = publisher;
  const message = toKafkaMessage(await asPublished(publisher, event, fields));
  const parent = activeOr(event.headers);
  const { metrics } = deps;
  const topic = { topic: event.topic };
  const stopTimer = metrics?.publishDuration.startTimer(topic);
  try {
    const [metadata] = await inSpan('kafka.produce', parent, { 'messaging.system': 'kafka', 'messaging.destination.name': event.topic, 'txoutbox.event_id': event.id }, () => {
      // The message's traceparent is this produce span: consumers continue the same trace.
      Object.assign(message.headers, injectTraceContext(context.active()));
      return deps.producer.send({ topic: event.topic, acks: -1, timeout: ackTimeoutMs, messages: [message] }, { signal: bound.signal, onSent: bound.sent });
    });
    stopTimer?.();
    metrics?.publishAttempts.inc({ ...topic, outcome: 'success' });
    return metadata;
  } catch (err) {
    stopTimer?.();
    logger.warn('publish attempt failed', { ...fields, error: err });
    const failure = err instanceof SendWithdrawnError
      ? ApplicationFailure.retryable(`the attempt ended (${String(bound.signal.reason ?? 'cancelled')}) before its message was sent: Kafka has nothing of it`, OutboxErrorCode.publishFailed)
      : await classify(publisher, err, event.topic);
    metrics?.publishAttempts.inc({ ...topic, outcome: 'failure' });
    metrics?.publishFailures.inc({ ...topic, reason: failure.type ?? 'unknown' });
    await deps.store.recordFailure(event.id, { attempts: fields.attempt, lastError: failure.message }).catch((recordErr: unknown) => {
      logger.error('could not record the failed attempt', { ...fields, error: recordErr });
    });
    throw failure;
  }
}

/**
 * The event in the version its type is published as. One that cannot be (its upcast threw or gave a
 * payload the version refuses) can never pass as the code stands: the failure is recorded on it and
 * not retried, so it escalates as stuck with the reason; a retry after a fixed deploy publishes it.
 */
async function asPublished({ deps, logger }: Publisher, event: OutboxEvent, fields: Fields): Promise<OutboxEvent> {
  if (deps.contracts === undefined) return event;
  try {
    return await deps.contracts.asPublished(event);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    logger.error('event cannot be published in its type\'s version', { ...fields, error: err });
    deps.metrics?.publishFailures.inc({ topic: event.topic, reason: OutboxErrorCode.upcastFailed });
    await deps.store.recordFailure(event.id, { attempts: fields.attempt, lastError: message }).catch((recordErr: unknown) => {
      logger.error('could not record the failed attempt', { ...fields, error: recordErr });
    });
    throw ApplicationFailure.nonRetryable(message, isOutboxError(err, OutboxErrorCode.upcastFailed) ? OutboxErrorCode.upcastFailed : OutboxErrorCode.publishFailed);
  }
}

/** Records what Kafka acknowledged; an event published meanwhile another way answers with the store's record. */
async function recordAcknowledged(publisher: Publisher, receipt: PublishReceipt, fields: Fields): Promise<PublishReceipt> {
  const { deps, logger, clock } = publisher;
  const { metrics } = deps;
  const topic = { topic: receipt.topic };
  const marked = await recordPublication(publisher, receipt, fields);
  if (marked === 'marked') {
    metrics?.eventsPublished.inc(topic);
    metrics?.commitToKafka.observe(topic, Math.max(0, Date.parse(receipt.publishedAt) - eventIdTime(receipt.eventId)) / 1000);
  }
  logger.info('event published', { ...fields, partition: receipt.partition, offset: receipt.offset, marked });
  if (marked !== 'already-published') return receipt;
  // Published meanwhile by another way (this copy is a duplicate with the same id): the store's record is the answer.
  const stored = await deps.store.get(receipt.eventId);
  return (stored === null ? null : storedReceipt(stored, clock, false)) ?? receipt;
}

/**
 * Records a publication Kafka acknowledged, retrying a failing store inside the attempt. If the
 * store still fails, the failure says the message IS in Kafka (type PUBLISHED_NOT_RECORDED, the
 * receipt in its details), so the workflow records it instead of escalating a delivered event. A
 * position another event holds (KAFKA_POSITION_TAKEN) is no publication: thrown as it is.
 */
async function recordPublication({ deps, logger }: Publisher, receipt: PublishReceipt, fields: Record<string, unknown>): Promise<MarkResult> {
  let lastError: unknown;
  for (let attempt = 0; attempt < MARK_ATTEMPTS; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, MARK_BACKOFF_MS * 2 ** (attempt - 1)));
    try {
      return await recordVerified(deps.store, deps.positions, { ...receipt, publishedAt: new Date(receipt.publishedAt) }, logger);
    } catch (err) {
      if (isOutboxError(err, OutboxErrorCode.kafkaPositionTaken)) throw err;
      lastError = err;
      logger.warn('could not record the publication; trying again', { ...fields, attempt: attempt + 1, error: err });
    }
  }
  const why = lastError instanceof Error ? lastError.message : String(lastError);
  logger.error('event is in Kafka but the store could not record it', { ...fields, partition: receipt.partition, offset: receipt.offset, error: lastError });
  throw ApplicationFailure.create({
    message: `published to ${receipt.topic} partition ${receipt.partition} offset ${receipt.offset}, but the store could not record it: ${why}`,
    type: PUBLISHED_NOT_RECORDED,
    details: [receipt],
  });
}

/**
 * kafkajs says whether an error can pass (`retriable`); what cannot must not be retried. An unknown
 * topic is "retriable" to kafkajs (metadata may lag), so the broker is asked whether it exists.
 */
async function classify({ deps }: Publisher, err: unknown, topic: string): Promise<ApplicationFailure> {
  const message = err instanceof Error ? err.message : String(err);
  const chain = errorChain(err);
  const fatal = chain.find(isFatal);
  if (fatal) return ApplicationFailure.nonRetryable(`cannot be published: ${fatal.message}`, OutboxErrorCode.publishFailed);
  const unknownTopic = chain.some((e) => (e as { type?: unknown }).type === 'UNKNOWN_TOPIC_OR_PARTITION' || e.name === 'KafkaJSTopicMetadataNotLoaded');
  if (unknownTopic && deps.topicExists && !(await deps.topicExists(topic).catch(() => true))) {
    return ApplicationFailure.nonRetryable(`topic ${topic} does not exist (and topics are not auto-created)`, 'UNKNOWN_TOPIC');
  }
  return ApplicationFailure.retryable(`publish failed: ${message}`, OutboxErrorCode.publishFailed);
}

/** One attempt's bounds: its deadline and cancellation as one signal, and word of when its message left. */
interface AttemptBound {
  /** Aborts shortly before the attempt's start-to-close timeout, or when Temporal cancels it. */
  signal: AbortSignal;
  /** The request carrying its message left at `at` (SendOptions.onSent). */
  sent: (at: number) => void;
  end: () => void;
}

/**
 * Bounds an attempt by itself: a signal that withdraws the message while it still waits to be sent,
 * a little before start-to-close (or when Temporal cancels the attempt). At that deadline, still
 * running, the attempt heartbeats once (`PublishHeartbeat`): until when the message already sent can
 * be acknowledged (one send window after it left), or null when none is on its way. The server keeps
 * it with the timeout that follows, and the workflow waits that long before it escalates. A normal
 * attempt sends no heartbeat at all (each is a write on the Temporal server); a local activity never
 * does, and its workflow waits a conservative window instead.
 */
function boundAttempt(ctx: Context, sendWindowMs: number): AttemptBound {
  const { info } = ctx;
  const controller = new AbortController();
  const startToCloseMs = info.startToCloseTimeoutMs;
  let sentAt: number | undefined;
  const deadline = setTimeout(
    () => {
      controller.abort(new Error(`within ${startToCloseMs} ms start-to-close`));
      if (!info.isLocal) ctx.heartbeat({ inFlightUntil: sentAt === undefined ? null : sentAt + sendWindowMs } satisfies PublishHeartbeat);
    },
    Math.max(0, startToCloseMs - Math.min(2_000, startToCloseMs / 10)),
  );
  const onCancel = (): void => controller.abort(ctx.cancellationSignal.reason ?? new Error('cancelled by Temporal'));
  ctx.cancellationSignal.addEventListener('abort', onCancel, { once: true });
  return {
    signal: controller.signal,
    sent: (at) => {
      sentAt = at;
    },
    end: () => {
      clearTimeout(deadline);
      ctx.cancellationSignal.removeEventListener('abort', onCancel);
    },
  };
}
