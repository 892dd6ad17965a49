import { hash } from 'node:crypto';
import { OutboxError, OutboxErrorCode } from './errors';
import type { JsonValue } from './event';

/**
 * Checks that `value` is plain JSON (null, booleans, finite numbers, strings, arrays, objects
 * whose prototype is Object.prototype or null) and returns its canonical text: keys sorted by
 * code unit, no white space (the shape of RFC 8785 for the values JSON.stringify prints the same).
 * Object properties whose value is `undefined` are left out, as JSON.stringify does.
 *
 * Throws OutboxError NOT_SERIALIZABLE naming the path of the first value JSON cannot carry:
 * BigInt, functions, symbols, NaN/Infinity, cycles, `undefined` in arrays, Dates, Maps, class
 * instances (which JSON.stringify would silently change or drop).
 */
export function canonicalJson(value: unknown): string {
  try {
    return write(value, undefined, new Set());
  } catch (err) {
    // Building each value's path costs a string per value: the walk that names it runs only once
    // the first one found something JSON cannot carry.
    if (err === NOT_JSON) write(value, '$', new Set());
    throw err;
  }
}

/** SHA-256 (hex) of the canonical JSON of `value`: one call, without a Hash object per payload. */
export function payloadHash(canonical: string): string {
  return hash('sha256', canonical, 'hex');
}

/** Parses canonical JSON back to a value (for stores that keep the payload as text). */
export function parseJson(text: string): JsonValue {
  return JSON.parse(text) as JsonValue;
}

/** What the walk without paths throws at a value JSON cannot carry; canonicalJson then walks again to name it. */
const NOT_JSON = new Error('not JSON');

function fail(path: string | undefined, what: string): never {
  if (path === undefined) throw NOT_JSON;
  throw new OutboxError(OutboxErrorCode.notSerializable, `payload is not JSON-serialisable: ${what} at ${path}`, {
    context: { path },
  });
}

/** The canonical text of `value`; `path` (undefined: not tracked) names the value in the error. */
function write(value: unknown, path: string | undefined, seen: Set<object>): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) fail(path, `the number ${String(value)}`);
      return JSON.stringify(value);
    case 'bigint':
      return fail(path, 'a BigInt (send it as a string)');
    case 'function':
      return fail(path, 'a function');
    case 'symbol':
      return fail(path, 'a symbol');
    case 'undefined':
      return fail(path, 'undefined');
    case 'object':
      break;
  }
  if (value === null) return 'null';
  const obj = value as object;
  if (seen.has(obj)) fail(path, 'a circular reference');
  seen.add(obj);
  let out: string;
  if (Array.isArray(obj)) {
    out = `[${obj.map((item: unknown, i) => write(item, path === undefined ? undefined : `${path}[${i}]`, seen)).join(',')}]`;
  } else {
    const proto: unknown = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) {
      const name = (obj as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      fail(path, `an instance of ${name} (only plain objects; convert it, e.g. a Date to an ISO string)`);
    }
    if (Object.getOwnPropertySymbols(obj).length > 0) fail(path, 'a symbol-keyed property');
    const record = obj as Record<string, unknown>;
    const parts: string[] = [];
    for (const key of Object.keys(record).sort()) {
      const item = record[key];
      if (item === undefined) continue;
      parts.push(`${JSON.stringify(key)}:${write(item, path === undefined ? undefined : `${path}.${key}`, seen)}`);
    }
    out = `{${parts.join(',')}}`;
  }
  seen.delete(obj);
  return out;
}
