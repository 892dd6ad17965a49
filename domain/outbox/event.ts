/** The lifecycle of an outbox event: pending → published | stuck → compensated | discarded. */
export const OutboxStatus = {
  pending: 'pending',
  published: 'published',
  stuck: 'stuck',
  compensated: 'compensated',
  discarded: 'discarded',
} as const;
export type OutboxStatus = (typeof OutboxStatus)[keyof typeof OutboxStatus];

/** Version of the stored envelope's layout (not of any payload schema). */
export const ENVELOPE_VERSION = 1;

/** CloudEvents specification version the envelope follows. */
export const CLOUDEVENTS_SPEC_VERSION = '1.0';

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };

/** Context carried from the write to the Kafka message (CloudEvents extensions, W3C trace context). */
export interface EventHeaders {
  correlationId?: string;
  causationId?: string;
  /** W3C trace context of the write. */
  traceparent?: string;
  tracestate?: string;
  /** Further string headers, copied to the Kafka message. */
  extra?: Record<string, string>;
}

/** Where Kafka stored the event. */
export interface KafkaLanding {
  partition: number;
  /** Kafka offset, an int64 kept as a decimal string. */
  offset: string;
}

/**
 * The outbox envelope as stored: CloudEvents attributes (id, source, type, time, subject =
 * aggregate id, datacontenttype) plus the outbox's own fields.
 */
export interface OutboxEvent {
  /** Event id: a UUIDv7, so ids sort by creation time. Also the Temporal workflow id's suffix. */
  id: string;
  envelopeVersion: typeof ENVELOPE_VERSION;
  specVersion: typeof CLOUDEVENTS_SPEC_VERSION;
  /** CloudEvents `source`: the service that produced the event. */
  source: string;
  type: string;
  schemaVersion: number;
  aggregateType: string;
  aggregateId: string;
  topic: string;
  /** Kafka message key (the aggregate key unless the type says otherwise). */
  key: string;
  payload: JsonValue;
  /** SHA-256 (hex) of the canonical JSON of the payload. */
  payloadHash: string;
  headers: EventHeaders;
  occurredAt: Date;
  status: OutboxStatus;
  attempts: number;
  lastError: string | null;
  publishedAt: Date | null;
  kafka: KafkaLanding | null;
  /** Set when an operator compensated or discarded the stuck event. */
  resolution: EventResolution | null;
  /**
   * Position among the events of the same topic and key, assigned by the store inside the write
   * transaction (so it follows commit order), when the type's ordering is `per-key`; null otherwise.
   */
  sequence: number | null;
}

/** How an operator ended a stuck event. */
export interface EventResolution {
  status: typeof OutboxStatus.compensated | typeof OutboxStatus.discarded;
  /** The operator's reason (required to discard). */
  reason: string | null;
  at: Date;
}

/** What the publish activity records once Kafka acknowledged the event. */
export interface PublishResult extends KafkaLanding {
  eventId: string;
  topic: string;
  publishedAt: Date;
  /** The Temporal activity attempt that published it (1 = first try). */
  attempts: number;
  /** True when the store already said `published` and nothing was sent again. */
  alreadyPublished: boolean;
}
