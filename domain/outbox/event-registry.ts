// domain/outbox/event-registry.ts: the event types a service writes and publishes, by type and
// version: checked together when registered (upcasts, compatibility), and the transformation of a
// stored event into the version its type is published as.
import { canonicalJson, payloadHash } from './canonical-json';
import { compatibilityIssues, type CompatibilityIssue } from './compatibility';
import { OutboxError, OutboxErrorCode } from './errors';
import type { JsonValue, OutboxEvent } from './event';
import type { EventType } from './event-types';

/** All event types a service may write, by type and schema version. */
export interface EventRegistry {
  /**
   * The type at that version, or when none is given the version it is published as
   * (EventRegistryOptions.publish), else its newest registered version.
   */
  resolve(type: string, schemaVersion?: number): EventType;
  /** Every registered type. */
  all(): readonly EventType[];
  /** The distinct topics the registered types publish to. */
  topics(): string[];
  /** The version a type is published as; undefined: as each event was written. */
  publishVersion(type: string): number | undefined;
  /**
   * The event as it is published: in its type's publish version, upcast step by step from the version
   * it was written as, each step's result validated against its version's schema. An event whose type
   * this registry does not know, or has no publish version, is returned as it is.
   * @throws OutboxError UPCAST_FAILED when it cannot be (an upcast threw or gave an invalid payload, a
   *   step from its version is not registered, or the event is newer than the publish version:
   *   txoutbox does not downcast)
   */
  asPublished(event: OutboxEvent): Promise<OutboxEvent>;
}

export interface EventRegistryOptions {
  /**
   * The version each type is published as, whatever version its events were written as: older events
   * are upcast on the way (EventTypeDefinition.upcast). `"latest"`: the newest registered. A type not
   * named is published as each event was written.
   */
  publish?: Readonly<Record<string, number | 'latest'>>;
}

export function createEventRegistry(types: ReadonlyArray<EventType>, options: EventRegistryOptions = {}): EventRegistry {
  const byType = indexByType(types);
  const publishVersions = new Map<string, number>();
  for (const [type, wanted] of Object.entries(options.publish ?? {})) {
    const versions = byType.get(type);
    if (versions === undefined) throw invalidConfig(`publish names ${type}, which is not registered`, type);
    const version = wanted === 'latest' ? Math.max(...versions.keys()) : wanted;
    if (!versions.has(version)) throw invalidConfig(`${type} is to be published as v${String(wanted)}, which is not registered (registered: ${[...versions.keys()].join(', ')})`, type);
    publishVersions.set(type, version);
  }
  for (const [type, versions] of byType) {
    checkUpcasts(type, versions, publishVersions.get(type));
    checkCompatibility(type, versions);
  }
  const all = [...byType.values()].flatMap((versions) => [...versions.values()]);
  return {
    resolve(type: string, schemaVersion?: number): EventType {
      const versions = byType.get(type);
      const wanted = schemaVersion ?? publishVersions.get(type) ?? (versions === undefined ? undefined : Math.max(...versions.keys()));
      const found = wanted === undefined ? undefined : versions?.get(wanted);
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
    publishVersion: (type) => publishVersions.get(type),
    asPublished: (event) => upcastEvent(event, byType.get(event.type), publishVersions.get(event.type)),
  };
}

function indexByType(types: ReadonlyArray<EventType>): Map<string, Map<number, EventType>> {
  const byType = new Map<string, Map<number, EventType>>();
  for (const t of types) {
    const versions = byType.get(t.type) ?? new Map<number, EventType>();
    if (versions.has(t.schemaVersion)) throw invalidConfig(`event type ${t.type} v${t.schemaVersion} is registered twice`, t.type);
    versions.set(t.schemaVersion, t);
    byType.set(t.type, versions);
  }
  // Versions in ascending order: the compatibility check walks them so.
  for (const [type, versions] of byType) byType.set(type, new Map([...versions].sort(([a], [b]) => a - b)));
  return byType;
}

/** Every registered version below the publish version must reach it: each version above it declares its upcast. */
function checkUpcasts(type: string, versions: ReadonlyMap<number, EventType>, publishVersion: number | undefined): void {
  if (publishVersion === undefined) return;
  const topics = new Set([...versions.values()].map((t) => t.topic));
  if (topics.size > 1) throw invalidConfig(`${type} is published as v${publishVersion}, but its versions name different topics (${[...topics].join(', ')}): an upcast event keeps the topic it was written for, so they must share one`, type);
  const oldest = Math.min(...versions.keys());
  for (let v = oldest + 1; v <= publishVersion; v++) {
    const step = upcastStep(versions, v);
    if (typeof step === 'string') throw invalidConfig(`${type} is published as v${publishVersion}, but ${step}: events written as v${oldest} could not be published`, type);
  }
}

/** Version v with its upcast from v-1, or why there is none (not registered, or no upcast declared). */
function upcastStep(versions: ReadonlyMap<number, EventType>, v: number): { type: EventType; upcast: NonNullable<EventType['upcast']> } | string {
  const type = versions.get(v);
  if (type === undefined) return `v${v} is not registered`;
  return type.upcast === null ? `v${v} declares no upcast from v${v - 1}` : { type, upcast: type.upcast };
}

/** Each version keeps the promise it makes (its compatibility) to the one before it, or to all before it (transitive). */
function checkCompatibility(type: string, versions: ReadonlyMap<number, EventType>): void {
  const list = [...versions.values()];
  list.forEach((next, i) => {
    if (i === 0 || next.compatibility === 'NONE') return;
    const earlier = next.compatibility.endsWith('_TRANSITIVE') ? list.slice(0, i) : [list[i - 1] as EventType];
    for (const previous of earlier) {
      if (previous.jsonSchema === null || next.jsonSchema === null) {
        const missing = previous.jsonSchema === null ? previous : next;
        throw invalidConfig(`${type} v${missing.schemaVersion} has no JSON Schema, so v${next.schemaVersion}'s ${next.compatibility} compatibility with v${previous.schemaVersion} cannot be checked: give jsonSchema, or compatibility "NONE"`, type);
      }
      const issues = compatibilityIssues(previous.jsonSchema, next.jsonSchema, next.compatibility);
      if (issues.length > 0) throw incompatible(type, previous.schemaVersion, next, issues);
    }
  });
}

function incompatible(type: string, previous: number, next: EventType, issues: Array<CompatibilityIssue & { direction: string }>): OutboxError {
  const [first] = issues;
  const list = issues.map((i) => `${i.path}: ${i.message} (${i.direction === 'backward' ? `a v${next.schemaVersion} consumer reading v${previous}` : `a v${previous} consumer reading v${next.schemaVersion}`})`);
  return new OutboxError(OutboxErrorCode.incompatibleSchema, `${type} v${next.schemaVersion} breaks its ${next.compatibility} compatibility with v${previous}: ${list.join('; ')}`, {
    context: { type, path: first?.path, issues: issues.map(({ path, message }) => ({ path, message })) },
  });
}

async function upcastEvent(event: OutboxEvent, versions: ReadonlyMap<number, EventType> | undefined, target: number | undefined): Promise<OutboxEvent> {
  if (versions === undefined || target === undefined || event.schemaVersion === target) return event;
  const failed = (message: string, cause?: unknown): OutboxError =>
    new OutboxError(OutboxErrorCode.upcastFailed, `event ${event.id} (${event.type} v${event.schemaVersion}) cannot be published as v${target}: ${message}`, {
      context: { eventId: event.id, type: event.type, topic: event.topic },
      cause,
    });
  if (event.schemaVersion > target) throw failed(`it was written as a newer version, and txoutbox does not downcast`);
  let payload: unknown = event.payload;
  for (let v = event.schemaVersion + 1; v <= target; v++) {
    const step = upcastStep(versions, v);
    if (typeof step === 'string') throw failed(step);
    try {
      payload = await step.upcast.transform(payload);
    } catch (err) {
      throw failed(`its upcast from v${v - 1} to v${v} threw: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    try {
      payload = await step.type.validate(payload);
    } catch (err) {
      throw failed(`its upcast to v${v} gave a payload v${v} refuses: ${err instanceof Error ? err.message : String(err)}`, err);
    }
  }
  let canonical: string;
  try {
    canonical = canonicalJson(payload);
  } catch (err) {
    throw failed(`its upcast gave a payload JSON cannot carry: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  return { ...event, schemaVersion: target, payload: JSON.parse(canonical) as JsonValue, payloadHash: payloadHash(canonical) };
}

function invalidConfig(message: string, type: string): OutboxError {
  return new OutboxError(OutboxErrorCode.invalidConfig, message, { context: { type } });
}
