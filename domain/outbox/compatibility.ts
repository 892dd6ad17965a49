// domain/outbox/compatibility.ts: whether consumers of one version of a payload contract can read
// another, decided on the two versions' JSON Schemas (as Confluent's schema registry does for JSON
// Schema subjects: BACKWARD, FORWARD, FULL and their transitive forms).

/** A JSON Schema (draft 2020-12 or draft-07): an object, or `true`/`false`. */
export type JsonSchema = boolean | { readonly [keyword: string]: unknown };

/**
 * What a version promises about the version before it (Confluent's modes):
 * - `BACKWARD`: a consumer on this version reads events written as the previous one (the default:
 *   upgrade consumers first);
 * - `FORWARD`: a consumer on the previous version reads events written as this one (producers first);
 * - `FULL`: both; `NONE`: nothing is checked.
 * The `_TRANSITIVE` forms check against every earlier version, not only the previous one.
 */
export const COMPATIBILITY_MODES = ['BACKWARD', 'FORWARD', 'FULL', 'BACKWARD_TRANSITIVE', 'FORWARD_TRANSITIVE', 'FULL_TRANSITIVE', 'NONE'] as const;
export type Compatibility = (typeof COMPATIBILITY_MODES)[number];

/** One reason a reader cannot read what a writer writes: where in the payload, and why. */
export interface CompatibilityIssue {
  /** `$` is the payload; `$.lines[].sku` a field of each element of `lines`. */
  path: string;
  message: string;
}

/** The schemas of one version: what a consumer's parser accepts (reader) and what the outbox writes (writer). */
export interface VersionSchemas {
  reader: JsonSchema;
  writer: JsonSchema;
}

/**
 * The issues that keep `next` from keeping `mode` with `previous`; none: compatible. BACKWARD asks
 * whether `next`'s reader takes `previous`'s writes, FORWARD the reverse. Transitive modes are the
 * caller's to apply to each earlier version.
 */
export function compatibilityIssues(previous: VersionSchemas, next: VersionSchemas, mode: Compatibility): Array<CompatibilityIssue & { direction: 'backward' | 'forward' }> {
  const out: Array<CompatibilityIssue & { direction: 'backward' | 'forward' }> = [];
  if (mode === 'NONE') return out;
  if (!mode.startsWith('FORWARD')) {
    for (const issue of readerIssues(next.reader, previous.writer)) out.push({ ...issue, direction: 'backward' });
  }
  if (!mode.startsWith('BACKWARD')) {
    for (const issue of readerIssues(previous.reader, next.writer)) out.push({ ...issue, direction: 'forward' });
  }
  return out;
}

/**
 * Where a consumer validating with `reader` may refuse a payload that `writer` allows. Conservative:
 * what it cannot prove it reports. One leniency, as the common use of JSON Schema expects: a field
 * the writer does not declare is taken to be absent, even where the writer's schema is open.
 */
export function readerIssues(reader: JsonSchema, writer: JsonSchema): CompatibilityIssue[] {
  const issues: CompatibilityIssue[] = [];
  check({ readerRoot: reader, writerRoot: writer, issues }, reader, writer, '$', 0);
  return issues;
}

interface Walk {
  readerRoot: JsonSchema;
  writerRoot: JsonSchema;
  issues: CompatibilityIssue[];
}

type SchemaObject = { readonly [keyword: string]: unknown };

const MAX_DEPTH = 64;

function check(walk: Walk, readerIn: JsonSchema, writerIn: JsonSchema, path: string, depth: number): void {
  const add = (message: string): void => void walk.issues.push({ path, message });
  if (depth > MAX_DEPTH) return add('the schemas nest too deep to compare');
  const r = deref(readerIn, walk.readerRoot);
  const w = deref(writerIn, walk.writerRoot);
  if (acceptsAnything(r) || w === false) return;
  if (r === false) return add('the reader accepts nothing here');
  if (acceptsAnything(w)) return add('the writer may write any value here; the reader restricts it');
  if (typeof r !== 'object' || typeof w !== 'object') return;
  const writerBranches = branches(w);
  if (writerBranches !== undefined) {
    for (const branch of writerBranches) check(walk, r, { ...withoutBranches(w), ...asObject(branch) }, path, depth + 1);
    return;
  }
  const readerBranches = branches(r);
  if (readerBranches !== undefined) {
    // Each branch is tried on a walk of its own, over the same documents (their $refs resolve as above).
    const fits = readerBranches.some((branch) => {
      const trial: Walk = { ...walk, issues: [] };
      check(trial, { ...withoutBranches(r), ...asObject(branch) }, w, path, depth + 1);
      return trial.issues.length === 0;
    });
    if (!fits) add('no alternative (anyOf/oneOf) of the reader takes what the writer writes');
    return;
  }
  const before = walk.issues.length;
  checkTypes(r, w, add);
  if (walk.issues.length > before) return; // the bounds of a type the reader refuses say nothing more
  checkValues(r, w, add);
  checkBounds(r, w, add);
  if (walk.issues.length > before) return;
  checkObject(walk, r, w, path, depth);
  checkArray(walk, r, w, path, depth);
}

function acceptsAnything(schema: JsonSchema): boolean {
  if (schema === true) return true;
  if (schema === false) return false;
  return Object.keys(schema).every((k) => ANNOTATIONS.has(k));
}

/** Keywords that do not restrict what a schema accepts. */
const ANNOTATIONS = new Set(['$schema', '$id', '$comment', 'title', 'description', 'deprecated', 'default', 'examples', 'readOnly', 'writeOnly', '$defs', 'definitions']);

/** A local `$ref` (`#/$defs/x`, `#/definitions/x`) resolved against its document; others stay as they are. */
function deref(schema: JsonSchema, root: JsonSchema): JsonSchema {
  let current = schema;
  for (let hops = 0; hops < 16 && typeof current === 'object' && typeof current.$ref === 'string'; hops++) {
    const ref = current.$ref as string;
    if (!ref.startsWith('#')) break;
    let target: unknown = root;
    for (const part of ref.slice(1).split('/').filter(Boolean)) {
      target = typeof target === 'object' && target !== null ? (target as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
    }
    if (typeof target !== 'object' && typeof target !== 'boolean') break;
    const rest: Record<string, unknown> = { ...current };
    delete rest.$ref;
    current = typeof target === 'boolean' ? target : { ...(target as SchemaObject), ...rest };
  }
  return current;
}

function branches(schema: SchemaObject): JsonSchema[] | undefined {
  const list = schema.anyOf ?? schema.oneOf;
  return Array.isArray(list) ? (list as JsonSchema[]) : undefined;
}

function withoutBranches(schema: SchemaObject): SchemaObject {
  const rest: Record<string, unknown> = { ...schema };
  delete rest.anyOf;
  delete rest.oneOf;
  return rest;
}

function asObject(schema: JsonSchema): SchemaObject {
  return typeof schema === 'object' ? schema : schema ? {} : { not: {} };
}

/** The JSON types a schema allows (from `type`, or the values of `enum`/`const`); undefined: any. */
function typesOf(schema: SchemaObject): Set<string> | undefined {
  if (typeof schema.type === 'string') return new Set([schema.type]);
  if (Array.isArray(schema.type)) return new Set(schema.type as string[]);
  const values = valuesOf(schema);
  return values === undefined ? undefined : new Set(values.map(jsonType));
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function valuesOf(schema: SchemaObject): unknown[] | undefined {
  if (Array.isArray(schema.enum)) return schema.enum as unknown[];
  return 'const' in schema ? [schema.const] : undefined;
}

function checkTypes(r: SchemaObject, w: SchemaObject, add: (message: string) => void): void {
  const readerTypes = typesOf(r);
  if (readerTypes === undefined) return;
  const writerTypes = typesOf(w);
  const takes = (t: string): boolean => readerTypes.has(t) || (t === 'integer' && readerTypes.has('number'));
  if (writerTypes === undefined) return add(`the writer may write any type; the reader takes ${[...readerTypes].join(' or ')}`);
  const refused = [...writerTypes].filter((t) => !takes(t));
  if (refused.length > 0) add(`the writer may write ${refused.join(' or ')}; the reader takes ${[...readerTypes].join(' or ')}`);
}

function checkValues(r: SchemaObject, w: SchemaObject, add: (message: string) => void): void {
  const readerValues = valuesOf(r);
  if (readerValues === undefined) return;
  const writerValues = valuesOf(w);
  if (writerValues === undefined) return add(`the reader takes only ${JSON.stringify(readerValues)}; the writer may write other values`);
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  const refused = writerValues.filter((v) => !readerValues.some((rv) => same(rv, v)));
  if (refused.length > 0) add(`the writer may write ${JSON.stringify(refused)}, which the reader does not take`);
}

/** Bounds and formats: the reader's may not be tighter than the writer's. */
function checkBounds(r: SchemaObject, w: SchemaObject, add: (message: string) => void): void {
  for (const [keyword, tighter] of BOUNDS) {
    const rv = r[keyword];
    if (typeof rv !== 'number') continue;
    const wv = w[keyword];
    if (typeof wv !== 'number' || tighter(rv, wv)) add(`the reader requires ${keyword} ${rv}; the writer ${typeof wv === 'number' ? `allows ${keyword} ${wv}` : `has no ${keyword}`}`);
  }
  for (const keyword of ['pattern', 'format', 'multipleOf']) {
    const rv = r[keyword];
    if (rv !== undefined && rv !== w[keyword]) add(`the reader requires ${keyword} ${JSON.stringify(rv)}; the writer ${w[keyword] === undefined ? `has no ${keyword}` : `has ${JSON.stringify(w[keyword])}`}`);
  }
}

const above = (reader: number, writer: number): boolean => reader > writer;
const below = (reader: number, writer: number): boolean => reader < writer;
const BOUNDS: ReadonlyArray<readonly [string, (reader: number, writer: number) => boolean]> = [
  ['minimum', above],
  ['exclusiveMinimum', above],
  ['minLength', above],
  ['minItems', above],
  ['minProperties', above],
  ['maximum', below],
  ['exclusiveMaximum', below],
  ['maxLength', below],
  ['maxItems', below],
  ['maxProperties', below],
];

function checkObject(walk: Walk, r: SchemaObject, w: SchemaObject, path: string, depth: number): void {
  const readerProps = (r.properties ?? {}) as Record<string, JsonSchema>;
  const writerProps = (w.properties ?? {}) as Record<string, JsonSchema>;
  const writerRequired = new Set(Array.isArray(w.required) ? (w.required as string[]) : []);
  const field = (name: string): string => `${path}.${name}`;
  for (const name of Array.isArray(r.required) ? (r.required as string[]) : []) {
    if (writerRequired.has(name)) continue;
    walk.issues.push({ path: field(name), message: name in writerProps ? 'required by the reader, optional for the writer' : 'required by the reader, not written by the writer' });
  }
  for (const [name, writerProp] of Object.entries(writerProps)) {
    const readerProp = readerProps[name];
    if (readerProp !== undefined) check(walk, readerProp, writerProp, field(name), depth + 1);
    else if (r.additionalProperties === false) walk.issues.push({ path: field(name), message: 'written by the writer; the reader refuses fields it does not declare' });
    else if (typeof r.additionalProperties === 'object') check(walk, r.additionalProperties as JsonSchema, writerProp, field(name), depth + 1);
  }
  if (typeof w.additionalProperties === 'object') {
    for (const [name, readerProp] of Object.entries(readerProps)) if (!(name in writerProps)) check(walk, readerProp, w.additionalProperties as JsonSchema, field(name), depth + 1);
  }
  if (r.additionalProperties === false && w.additionalProperties !== false && w.type === 'object') {
    walk.issues.push({ path, message: 'the writer may write fields it does not declare; the reader refuses them' });
  }
}

function checkArray(walk: Walk, r: SchemaObject, w: SchemaObject, path: string, depth: number): void {
  const readerItems = r.items as JsonSchema | undefined;
  if (readerItems === undefined || Array.isArray(readerItems)) return;
  const writerItems = w.items as JsonSchema | undefined;
  check(walk, readerItems, writerItems === undefined || Array.isArray(writerItems) ? true : writerItems, `${path}[]`, depth + 1);
}
