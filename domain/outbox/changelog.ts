// domain/outbox/changelog.ts: the event contracts of a registry as its consumers read them: each type,
// its topic, versions, compatibility, deprecated fields and what changed from one version to the next;
// and the check of a registry against the contracts it published before.
import type { JsonSchema } from './compatibility';
import type { EventRegistry } from './event-registry';
import type { EventType } from './event-types';

/** A field of a payload: `$.lines[].sku` is the sku of each element of lines. */
export interface ContractField {
  path: string;
  /** JSON type(s), e.g. `string`, `integer|null`, `"open"|"closed"`; `any` when the schema does not say. */
  type: string;
  required: boolean;
  deprecated: boolean;
}

export type ContractChange =
  | { kind: 'added' | 'removed'; path: string; type: string; required: boolean }
  | { kind: 'changed'; path: string; from: string; to: string }
  | { kind: 'deprecated'; path: string };

export interface ContractVersion {
  version: number;
  compatibility: EventType['compatibility'];
  /** The version this one upcasts from, if it declares an upcast. */
  upcastFrom: number | null;
  /** The JSON Schema of what the outbox writes; null when the schema gives none. */
  jsonSchema: JsonSchema | null;
  fields: ContractField[];
  deprecated: string[];
  /** What changed from the version before it (empty for the first). */
  changes: ContractChange[];
}

export interface ContractType {
  type: string;
  aggregateType: string;
  topic: string;
  ordering: EventType['ordering'];
  /** The version events of this type are published as; null: as each was written. */
  publishedAs: number | null;
  versions: ContractVersion[];
}

export interface Contracts {
  types: ContractType[];
}

/** The registry's contracts, types in name order, versions in order. */
export function describeContracts(registry: EventRegistry): Contracts {
  const byType = new Map<string, EventType[]>();
  for (const t of registry.all()) byType.set(t.type, [...(byType.get(t.type) ?? []), t]);
  const types = [...byType.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([type, list]) => {
    const versions = [...list].sort((a, b) => a.schemaVersion - b.schemaVersion);
    const newest = versions[versions.length - 1] as EventType;
    let previous: ContractField[] | undefined;
    return {
      type,
      aggregateType: newest.aggregateType,
      topic: newest.topic,
      ordering: newest.ordering,
      publishedAs: registry.publishVersion(type) ?? null,
      versions: versions.map((v): ContractVersion => {
        const fields = v.jsonSchema === null ? [] : fieldsOf(v.jsonSchema.writer);
        const changes = previous === undefined ? [] : diffFields(previous, fields);
        previous = fields;
        return {
          version: v.schemaVersion,
          compatibility: v.compatibility,
          upcastFrom: v.upcast?.fromVersion ?? null,
          jsonSchema: v.jsonSchema?.writer ?? null,
          fields,
          deprecated: fields.filter((f) => f.deprecated).map((f) => f.path),
          changes,
        };
      }),
    };
  });
  return { types };
}

/** The contracts as text, for a changelog page or a terminal. */
export function renderContracts(contracts: Contracts): string {
  const lines: string[] = [];
  for (const t of contracts.types) {
    const published = t.publishedAs === null ? 'published as written' : `published as v${t.publishedAs}`;
    lines.push(`${t.type}  (topic ${t.topic}, aggregate ${t.aggregateType}, ordering ${t.ordering}, ${published})`);
    for (const v of t.versions) {
      const first = v === t.versions[0];
      const promise = first ? '' : v.compatibility === 'NONE' ? '  no compatibility promised' : `  ${v.compatibility} compatible with v${v.version - 1}${v.compatibility.endsWith('_TRANSITIVE') ? ' and before' : ''}`;
      lines.push(`  v${v.version}${promise}${v.upcastFrom === null ? '' : `; upcast from v${v.upcastFrom}`}`);
      if (v.jsonSchema === null) lines.push('      (no JSON Schema: fields unknown)');
      else if (first) for (const f of v.fields) lines.push(`      ${f.path.slice(2)}: ${f.type}${f.required ? '' : ' (optional)'}${f.deprecated ? ' (deprecated)' : ''}`);
      for (const c of v.changes) lines.push(`      ${describeChange(c)}`);
      if (!first && v.changes.length === 0 && v.jsonSchema !== null) lines.push('      no field changed');
      if (!first && v.deprecated.length > 0) lines.push(`      deprecated: ${v.deprecated.map((p) => p.slice(2)).join(', ')}`);
    }
  }
  return lines.join('\n');
}

function describeChange(c: ContractChange): string {
  const field = c.path.slice(2);
  switch (c.kind) {
    case 'added':
      return `+ ${field}: ${c.type}${c.required ? '' : ' (optional)'}`;
    case 'removed':
      return `- ${field}`;
    case 'changed':
      return `~ ${field}: ${c.from} -> ${c.to}`;
    case 'deprecated':
      return `! ${field}: deprecated`;
  }
}

/**
 * What changed in contracts published before (`txoutbox contracts --json` kept with the service):
 * a version removed, or a version whose schema changed since. Both break consumers and stored events
 * that rely on the version as it was; each is one line. Versions added are not problems.
 */
export function contractDrift(current: Contracts, published: Contracts): string[] {
  const problems: string[] = [];
  const now = new Map(current.types.map((t) => [t.type, new Map(t.versions.map((v) => [v.version, v]))]));
  for (const t of published.types) {
    for (const before of t.versions) {
      const after = now.get(t.type)?.get(before.version);
      if (after === undefined) {
        problems.push(`${t.type} v${before.version} was published and is no longer registered: its stored events cannot be published as it`);
        continue;
      }
      if (JSON.stringify(after.jsonSchema) === JSON.stringify(before.jsonSchema)) continue;
      const changes = diffFields(before.fields, after.fields).map(describeChange);
      problems.push(`${t.type} v${before.version} changed since it was published (${changes.length > 0 ? changes.join('; ') : 'its JSON Schema differs'}): publish the change as v${maxVersion(t) + 1}`);
    }
  }
  return problems;
}

function maxVersion(t: ContractType): number {
  return Math.max(...t.versions.map((v) => v.version));
}

/** The fields a JSON Schema declares (properties, nested objects, array elements), depth first. */
export function fieldsOf(schema: JsonSchema, path = '$', out: ContractField[] = [], depth = 0): ContractField[] {
  if (typeof schema !== 'object' || depth > 16) return out;
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const requiredNames = new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []);
  for (const [name, property] of Object.entries(properties)) {
    const fieldPath = `${path}.${name}`;
    out.push({ path: fieldPath, type: typeLabel(property), required: requiredNames.has(name), deprecated: typeof property === 'object' && property.deprecated === true });
    fieldsOf(property, fieldPath, out, depth + 1);
    const items = typeof property === 'object' ? (property.items as JsonSchema | undefined) : undefined;
    if (items !== undefined && !Array.isArray(items)) fieldsOf(items, `${fieldPath}[]`, out, depth + 1);
  }
  return out;
}

function typeLabel(schema: JsonSchema): string {
  if (typeof schema !== 'object') return schema ? 'any' : 'never';
  if (Array.isArray(schema.enum)) return (schema.enum as unknown[]).map((v) => JSON.stringify(v)).join('|');
  if ('const' in schema) return JSON.stringify(schema.const);
  if (typeof schema.type === 'string') return schema.type === 'array' && typeof schema.items === 'object' ? `array of ${typeLabel(schema.items as JsonSchema)}` : schema.type;
  if (Array.isArray(schema.type)) return (schema.type as string[]).join('|');
  const branches = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(branches)) return branches.map(typeLabel).join('|');
  return 'any';
}

function diffFields(before: ContractField[], after: ContractField[]): ContractChange[] {
  const old = new Map(before.map((f) => [f.path, f]));
  const now = new Map(after.map((f) => [f.path, f]));
  const changes: ContractChange[] = [];
  for (const f of after) {
    const was = old.get(f.path);
    if (was === undefined) {
      changes.push({ kind: 'added', path: f.path, type: f.type, required: f.required });
      continue;
    }
    const label = (x: ContractField): string => `${x.type}${x.required ? '' : ' (optional)'}`;
    if (label(was) !== label(f)) changes.push({ kind: 'changed', path: f.path, from: label(was), to: label(f) });
    if (f.deprecated && !was.deprecated) changes.push({ kind: 'deprecated', path: f.path });
  }
  for (const f of before) if (!now.has(f.path)) changes.push({ kind: 'removed', path: f.path, type: f.type, required: f.required });
  return changes;
}
