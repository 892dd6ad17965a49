import { canonicalJson } from './canonical-json';
import type { OutboxEvent } from './event';

/** A Kafka message as kafkajs sends it. */
export interface OutboxMessage {
  key: string;
  value: string;
  headers: Record<string, string>;
}

/**
 * Names an extra header cannot take: each would become a `ce_<name>` header that is one of the
 * event's own CloudEvents attributes (the spec's context attributes and the ones txoutbox sets), and
 * consumers deduplicate and route on those.
 */
export const RESERVED_HEADER_NAMES: ReadonlySet<string> = new Set([
  // CloudEvents 1.0 context attributes
  'id',
  'source',
  'specversion',
  'type',
  'datacontenttype',
  'dataschema',
  'subject',
  'time',
  'data',
  // set by txoutbox
  'schemaversion',
  'aggregatetype',
  'payloadhash',
  'partitionkey',
  'correlationid',
  'causationid',
  'traceparent',
  'tracestate',
]);

/**
 * The event as a Kafka message in CloudEvents' Kafka protocol binding, binary content mode: the
 * payload is the value (canonical JSON), attributes are `ce_*` headers, `content-type` carries
 * `datacontenttype`, the key is the aggregate key. The W3C `traceparent`/`tracestate` headers are
 * also set as themselves, for tracing instrumentation that reads them there.
 */
export function toKafkaMessage(event: OutboxEvent): OutboxMessage {
  const headers: Record<string, string> = {};
  // Extra headers first, so the event's own attributes win over any an older version accepted
  // under a reserved name (add() now refuses those).
  for (const [name, value] of Object.entries(event.headers.extra ?? {})) headers[`ce_${name}`] = value;
  Object.assign(headers, {
    ce_specversion: event.specVersion,
    ce_id: event.id,
    ce_source: event.source,
    ce_type: event.type,
    ce_time: event.occurredAt.toISOString(),
    ce_subject: event.aggregateId,
    'content-type': 'application/json',
    ce_schemaversion: String(event.schemaVersion),
    ce_aggregatetype: event.aggregateType,
    ce_payloadhash: event.payloadHash,
    ce_partitionkey: event.key,
  });
  const { correlationId, causationId, traceparent, tracestate } = event.headers;
  if (correlationId !== undefined) headers.ce_correlationid = correlationId;
  if (causationId !== undefined) headers.ce_causationid = causationId;
  if (traceparent !== undefined) headers.ce_traceparent = headers.traceparent = traceparent;
  if (tracestate !== undefined) headers.ce_tracestate = headers.tracestate = tracestate;
  return { key: event.key, value: canonicalJson(event.payload), headers };
}

/** The CloudEvents attributes of a received message (for consumers and tests). */
export interface ReceivedCloudEvent {
  id: string;
  type: string;
  source: string;
  time: string;
  subject: string;
  schemaVersion: number;
  headers: Record<string, string>;
}

export function readCloudEventHeaders(headers: Record<string, Buffer | string | (Buffer | string)[] | undefined>): ReceivedCloudEvent {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) flat[name] = first.toString();
  }
  return {
    id: flat.ce_id ?? '',
    type: flat.ce_type ?? '',
    source: flat.ce_source ?? '',
    time: flat.ce_time ?? '',
    subject: flat.ce_subject ?? '',
    schemaVersion: Number(flat.ce_schemaversion ?? NaN),
    headers: flat,
  };
}
