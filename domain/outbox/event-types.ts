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

export interface EventTypeDefinition<P> {
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
}

export type EventOrdering = 'none' | 'per-key';

/** A registered, checked event type. */
export interface EventType<P = unknown> extends Readonly<Required<Omit<EventTypeDefinition<P>, 'key'>>> {
  readonly ordering: EventOrdering;
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

export function defineEventType<P>(definition: EventTypeDefinition<P>): EventType<P> {
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
  return Object.freeze({
    ordering,
    type,
    schemaVersion,
    aggregateType,
    topic,
    schema,
    key,
    validate: (payload: unknown) => validatePayload(schema, payload, type),
  });
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

/** All event types a service may write, by type and schema version. */
export interface EventRegistry {
  /** The type at that version, or the newest registered version when none is given. */
  resolve(type: string, schemaVersion?: number): EventType;
  /** Every registered type. */
  all(): readonly EventType[];
  /** The distinct topics the registered types publish to. */
  topics(): string[];
}

export function createEventRegistry(types: ReadonlyArray<EventType>): EventRegistry {
  const byType = new Map<string, Map<number, EventType>>();
  for (const t of types) {
    const versions = byType.get(t.type) ?? new Map<number, EventType>();
    if (versions.has(t.schemaVersion)) {
      throw new OutboxError(OutboxErrorCode.invalidConfig, `event type ${t.type} v${t.schemaVersion} is registered twice`, {
        context: { type: t.type },
      });
    }
    versions.set(t.schemaVersion, t);
    byType.set(t.type, versions);
  }
  const all = [...byType.values()].flatMap((versions) => [...versions.values()]);
  return {
    resolve(type: string, schemaVersion?: number): EventType {
      const versions = byType.get(type);
      const found =
        versions === undefined
          ? undefined
          : schemaVersion === undefined
            ? versions.get(Math.max(...versions.keys()))
            : versions.get(schemaVersion);
      if (found === undefined) {
        const known = versions ? ` (registered versions: ${[...versions.keys()].join(', ')})` : '';
        const what = schemaVersion === undefined ? type : `${type} v${schemaVersion}`;
        throw new OutboxError(OutboxErrorCode.unregisteredEventType, `event type ${what} is not registered${known}`, {
          context: { type },
        });
      }
      return found;
    },
    all: () => all,
    topics: () => [...new Set(all.map((t) => t.topic))],
  };
}
