import { COMPATIBILITY_MODES, type Compatibility, type JsonSchema, type VersionSchemas } from './compatibility';
import { OutboxError, OutboxErrorCode } from './errors';

/**
 * The Standard Schema interface (standardschema.dev), implemented by zod, valibot, arktype and
 * others: any of them can validate an event type's payload without txoutbox depending on one.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}
type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardIssue> };
interface StandardIssue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

/** A payload validator: a Standard Schema, or a function that returns the payload or throws. */
export type PayloadSchema<P> = StandardSchemaV1<unknown, P> | ((payload: unknown) => P);

export interface EventTypeDefinition<P, Q = unknown> {
  /** Event type, e.g. `orders.OrderPlaced` (CloudEvents `type`): letters, digits, `._:-`. */
  type: string;
  /** Version of this type's payload contract, a positive integer. */
  schemaVersion: number;
  /** The kind of aggregate the event is about, e.g. `order`. */
  aggregateType: string;
  /** Kafka topic the event is published to. */
  topic: string;
  /** Validates (and may normalise) the payload at `outbox.add()`. */
  schema: PayloadSchema<P>;
  /** Message key; @default the aggregate id, so one aggregate's events share a partition. */
  key?: (aggregateId: string, payload: P) => string;
  /**
   * `per-key`: events with the same topic and key reach Kafka in commit order, one at a time; a stuck
   * event holds back the later events of its key (only). @default "none"
   */
  ordering?: EventOrdering;
  /**
   * What this version promises about the type's previous version (see Compatibility), checked when
   * the versions are registered together. @default "BACKWARD": consumers on this version read events
   * written as the previous one
   */
  compatibility?: Compatibility;
  /**
   * The payload's JSON Schema, for the compatibility check and the changelog. @default what the
   * schema gives as Standard JSON Schema (zod 4, valibot, arktype...): its input schema as what a
   * consumer's parser accepts, its output as what the outbox writes. A function schema gives none: a
   * type with more than one version must then give it here.
   */
  jsonSchema?: JsonSchema;
  /**
   * How an event written as the previous version becomes this one: a pure function of the payload,
   * run when the event is published as this version (EventRegistryOptions.publish). Its result is
   * validated against this version's schema.
   */
  upcast?: Upcast<Q, P>;
}

/** An upcast from `from` (version N-1 of the same type) to the version that declares it. */
export interface Upcast<Q, P> {
  from: EventType<Q>;
  transform: (payload: Q) => P | Promise<P>;
}

export type EventOrdering = 'none' | 'per-key';

/** A registered, checked event type. */
export interface EventType<P = unknown> extends Readonly<Required<Omit<EventTypeDefinition<P>, 'key' | 'compatibility' | 'jsonSchema' | 'upcast'>>> {
  readonly ordering: EventOrdering;
  readonly compatibility: Compatibility;
  /** The version's JSON Schemas (reader and writer); null when its schema gives none. */
  readonly jsonSchema: VersionSchemas | null;
  /** Its upcast from the previous version, if it declares one. */
  readonly upcast: { readonly fromVersion: number; transform(payload: unknown): unknown } | null;
  key(aggregateId: string, payload: P): string;
  /** Validates a payload: the (possibly normalised) payload, or OutboxError INVALID_PAYLOAD. */
  validate(payload: unknown): Promise<P>;
}

/** What an event type's name may be (also checked by the CLI's --type). */
export const TYPE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/;
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

/** Kafka's own rule for topic names: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`. */
export function checkTopicName(topic: unknown): string {
  if (typeof topic !== 'string' || !TOPIC_NAME.test(topic) || topic === '.' || topic === '..') {
    throw new OutboxError(
      OutboxErrorCode.invalidTopic,
      `invalid Kafka topic name ${JSON.stringify(topic)}: use 1 to 249 characters of [a-zA-Z0-9._-], not "." or ".."`,
      { context: { topic: typeof topic === 'string' ? topic : String(topic) } },
    );
  }
  return topic;
}

export function defineEventType<P, Q = unknown>(definition: EventTypeDefinition<P, Q>): EventType<P> {
  const { type, schemaVersion, aggregateType, topic, schema } = definition;
  const invalid = (message: string): OutboxError =>
    new OutboxError(OutboxErrorCode.invalidConfig, `event type ${JSON.stringify(type)}: ${message}`, { context: { type } });
  if (typeof type !== 'string' || !TYPE_NAME.test(type)) throw invalid('the type name must match ' + TYPE_NAME.source);
  if (!Number.isSafeInteger(schemaVersion) || schemaVersion < 1) throw invalid('schemaVersion must be a positive integer');
  if (typeof aggregateType !== 'string' || aggregateType.length === 0) throw invalid('aggregateType must be a non-empty string');
  checkTopicName(topic);
  if (typeof schema !== 'function' && !isStandardSchema(schema)) {
    throw invalid('schema must be a Standard Schema (zod, valibot, ...) or a validating function');
  }
  const key = definition.key ?? ((aggregateId: string) => aggregateId);
  const ordering = definition.ordering ?? 'none';
  if (ordering !== 'none' && ordering !== 'per-key') throw invalid('ordering must be "none" or "per-key"');
  const compatibility = definition.compatibility ?? 'BACKWARD';
  if (!COMPATIBILITY_MODES.includes(compatibility)) throw invalid(`compatibility must be one of ${COMPATIBILITY_MODES.join(', ')}`);
  const upcast = definition.upcast;
  if (upcast !== undefined) {
    if (typeof upcast?.transform !== 'function' || typeof upcast.from !== 'object' || upcast.from === null) throw invalid('upcast must be { from: <the previous version>, transform: (payload) => payload }');
    if (upcast.from.type !== type || upcast.from.schemaVersion !== schemaVersion - 1) {
      throw invalid(`v${schemaVersion} can upcast only from v${schemaVersion - 1} of the same type, not from ${upcast.from.type} v${upcast.from.schemaVersion}`);
    }
  }
  return Object.freeze({
    ordering,
    compatibility,
    jsonSchema: versionSchemas(schema, definition.jsonSchema, invalid, compatibility !== 'NONE'),
    upcast: upcast === undefined ? null : { fromVersion: upcast.from.schemaVersion, transform: upcast.transform as (payload: unknown) => unknown },
    type,
    schemaVersion,
    aggregateType,
    topic,
    schema,
    key,
    validate: (payload: unknown) => validatePayload(schema, payload, type),
  });
}

/**
 * The JSON Schemas of a version: given, or asked of its Standard Schema (Standard JSON Schema); null
 * when neither, or when asking fails and its compatibility needs none (`needed` false: NONE).
 */
function versionSchemas(schema: unknown, given: JsonSchema | undefined, invalid: (message: string) => OutboxError, needed: boolean): VersionSchemas | null {
  if (given !== undefined) {
    if (typeof given !== 'boolean' && (typeof given !== 'object' || given === null || Array.isArray(given))) throw invalid('jsonSchema must be a JSON Schema object');
    return { reader: given, writer: given };
  }
  const converter = (schema as { '~standard'?: { jsonSchema?: { input?: unknown; output?: unknown } } } | null)?.['~standard']?.jsonSchema;
  if (typeof converter?.input !== 'function' || typeof converter.output !== 'function') return null;
  const options = { target: 'draft-2020-12' };
  try {
    return { reader: (converter.input as (o: object) => JsonSchema)(options), writer: (converter.output as (o: object) => JsonSchema)(options) };
  } catch (err) {
    if (!needed) return null; // compatibility NONE: nothing needs it
    throw invalid(`its schema cannot be given as JSON Schema (${err instanceof Error ? err.message : String(err)}): give jsonSchema, or compatibility "NONE"`);
  }
}

function isStandardSchema<P>(schema: unknown): schema is StandardSchemaV1<unknown, P> {
  return typeof schema === 'object' && schema !== null && '~standard' in schema;
}

async function validatePayload<P>(schema: PayloadSchema<P>, payload: unknown, type: string): Promise<P> {
  if (typeof schema === 'function') {
    try {
      return schema(payload);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new OutboxError(OutboxErrorCode.invalidPayload, `payload of ${type} is invalid: ${message}`, {
        context: { type, issues: [{ message }] },
        cause: err,
      });
    }
  }
  const result = await schema['~standard'].validate(payload);
  if (result.issues === undefined) return result.value;
  const issues = result.issues.map((issue) => ({ message: issue.message, path: formatPath(issue.path) }));
  const summary = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
  throw new OutboxError(OutboxErrorCode.invalidPayload, `payload of ${type} is invalid: ${summary}`, {
    context: { type, issues },
  });
}

function formatPath(path: StandardIssue['path']): string | undefined {
  if (!path || path.length === 0) return undefined;
  return (
    '$' +
    path
      .map((segment) => (typeof segment === 'object' ? segment.key : segment))
      .map((key) => (typeof key === 'number' ? `[${key}]` : `.${String(key)}`))
      .join('')
  );
}
