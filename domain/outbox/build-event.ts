import { canonicalJson, payloadHash } from './canonical-json';
import { RESERVED_HEADER_NAMES } from './cloudevents';
import { OutboxError, OutboxErrorCode } from './errors';
import {
  CLOUDEVENTS_SPEC_VERSION,
  ENVELOPE_VERSION,
  OutboxStatus,
  type EventHeaders,
  type JsonValue,
  type OutboxEvent,
} from './event';
import type { EventRegistry } from './event-registry';
import type { EventType } from './event-types';
import type { OutboxOptions } from './options';

/** What a service hands to `outbox.add()`. */
export interface NewEvent {
  /** A registered event type. */
  type: string;
  /** @default the version the type is published as (EventRegistryOptions.publish), else its newest */
  schemaVersion?: number;
  /** The aggregate the event is about (CloudEvents `subject`). */
  aggregateId: string;
  /** Validated against the type's schema; must be plain JSON. */
  payload: unknown;
  /** Overrides the message key the type would derive. */
  key?: string;
  headers?: EventHeaders;
  /** @default the outbox clock's now */
  occurredAt?: Date;
}

const HEADER_NAME = /^[a-z0-9]{1,20}$/;

/**
 * Validates a new event and builds its envelope, or throws the OutboxError for the first thing
 * wrong with it. Order: shape, type, JSON-ness, schema, size, key, headers, time.
 */
export async function buildEvent(
  input: NewEvent,
  registry: EventRegistry,
  options: Required<OutboxOptions>,
  newId: () => string,
): Promise<OutboxEvent> {
  if (typeof input !== 'object' || input === null) {
    throw invalidEvent('the event must be an object');
  }
  if (typeof input.type !== 'string' || input.type.length === 0) throw invalidEvent('"type" must be a non-empty string');
  const eventType = registry.resolve(input.type, input.schemaVersion);
  const ctx = { type: eventType.type, topic: eventType.topic };
  const publishVersion = registry.publishVersion(eventType.type);
  if (publishVersion !== undefined && eventType.schemaVersion > publishVersion) {
    throw invalidEvent(`${eventType.type} is published as v${publishVersion}: an event written as v${eventType.schemaVersion} could not be (txoutbox does not downcast)`, ctx);
  }
  if (typeof input.aggregateId !== 'string' || input.aggregateId.length === 0 || input.aggregateId.length > 256) {
    throw invalidEvent('"aggregateId" must be a string of 1 to 256 characters', ctx);
  }

  const { validated, canonical } = await checkedPayload(input.payload, eventType, options, ctx);
  const key = input.key ?? eventType.key(input.aggregateId, validated);
  checkKey(key, eventType.type, options, ctx);

  const headers = checkHeaders(input.headers ?? {}, options, ctx);
  const occurredAt = input.occurredAt ?? options.clock();
  if (!(occurredAt instanceof Date) || Number.isNaN(occurredAt.getTime())) {
    throw invalidEvent('"occurredAt" must be a valid Date', ctx);
  }

  return {
    id: newId(),
    envelopeVersion: ENVELOPE_VERSION,
    specVersion: CLOUDEVENTS_SPEC_VERSION,
    source: options.source,
    type: eventType.type,
    schemaVersion: eventType.schemaVersion,
    aggregateType: eventType.aggregateType,
    aggregateId: input.aggregateId,
    topic: eventType.topic,
    key,
    payload: JSON.parse(canonical) as JsonValue,
    payloadHash: payloadHash(canonical),
    headers,
    occurredAt,
    status: OutboxStatus.pending,
    attempts: 0,
    lastError: null,
    publishedAt: null,
    kafka: null,
    resolution: null,
    // Assigned by the store in the write transaction; 0 marks "to be assigned".
    sequence: eventType.ordering === 'per-key' ? 0 : null,
  };
}

/** The payload as its schema returned it and as canonical JSON, once it is JSON, passes its schema, and fits the size limit. */
async function checkedPayload(payload: unknown, eventType: EventType, options: Required<OutboxOptions>, ctx: { type: string; topic: string }) {
  canonicalJson(payload); // what JSON cannot carry is reported before the schema sees it
  const validated = await eventType.validate(payload);
  const canonical = canonicalJson(validated);
  const size = Buffer.byteLength(canonical, 'utf8');
  if (size > options.maxPayloadBytes) {
    throw new OutboxError(
      OutboxErrorCode.payloadTooLarge,
      `payload of ${eventType.type} is ${size} bytes, over the limit of ${options.maxPayloadBytes}`,
      { context: ctx },
    );
  }
  return { validated, canonical };
}

function checkKey(key: unknown, type: string, options: Required<OutboxOptions>, ctx: { type: string; topic: string }): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || Buffer.byteLength(key, 'utf8') > options.maxKeyBytes) {
    throw new OutboxError(
      OutboxErrorCode.invalidKey,
      `message key of ${type} must be a non-empty string of at most ${options.maxKeyBytes} bytes`,
      { context: ctx },
    );
  }
}

function invalidEvent(message: string, context: { type?: string; topic?: string } = {}): OutboxError {
  return new OutboxError(OutboxErrorCode.invalidEvent, `invalid event: ${message}`, { context });
}

function checkHeaders(
  headers: EventHeaders,
  options: Required<OutboxOptions>,
  ctx: { type: string; topic: string },
): EventHeaders {
  if (typeof headers !== 'object' || headers === null) throw invalidEvent('"headers" must be an object', ctx);
  const out: EventHeaders = {};
  for (const name of ['correlationId', 'causationId', 'traceparent', 'tracestate'] as const) {
    const value = headers[name];
    if (value === undefined) continue;
    checkHeaderValue(name, value, options, ctx);
    out[name] = value;
  }
  if (headers.traceparent !== undefined && !/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(headers.traceparent)) {
    throw invalidEvent('"headers.traceparent" is not a W3C traceparent', ctx);
  }
  const extra = headers.extra ?? {};
  if (typeof extra !== 'object' || extra === null) throw invalidEvent('"headers.extra" must be an object', ctx);
  const names = Object.keys(extra);
  if (names.length > options.maxHeaders) {
    throw invalidEvent(`${names.length} extra headers, over the limit of ${options.maxHeaders}`, ctx);
  }
  if (names.length > 0) {
    out.extra = {};
    for (const name of names) {
      // CloudEvents extension attribute names: lower-case letters and digits, at most 20.
      if (!HEADER_NAME.test(name)) throw invalidEvent(`header name ${JSON.stringify(name)} must match ${HEADER_NAME.source}`, ctx);
      if (RESERVED_HEADER_NAMES.has(name)) {
        throw invalidEvent(`header name ${JSON.stringify(name)} is reserved: ce_${name} is one of the event's own CloudEvents attributes`, ctx);
      }
      const value = extra[name];
      checkHeaderValue(name, value, options, ctx);
      out.extra[name] = value as string;
    }
  }
  return out;
}

function checkHeaderValue(
  name: string,
  value: unknown,
  options: Required<OutboxOptions>,
  ctx: { type: string; topic: string },
): void {
  if (typeof value !== 'string' || Buffer.byteLength(value, 'utf8') > options.maxHeaderValueBytes) {
    throw invalidEvent(`header ${name} must be a string of at most ${options.maxHeaderValueBytes} bytes`, ctx);
  }
}
