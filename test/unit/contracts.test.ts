import { z } from 'zod';
import {
  applyOutboxDefaults,
  buildEvent,
  compatibilityIssues,
  createEventRegistry,
  defineEventType,
  OutboxErrorCode,
  readerIssues,
  type EventType,
  type OutboxEvent,
} from '../../domain/outbox';

const base = { type: 'orders.OrderPlaced', aggregateType: 'order', topic: 'orders' } as const;
const v1Schema = z.object({ orderId: z.string(), totalCents: z.number().int(), note: z.string().optional() });
const placedV1 = defineEventType({ ...base, schemaVersion: 1, schema: v1Schema });

/** The error a call throws (or fails the test when it throws none). */
function thrown(fn: () => unknown): { code?: string; message: string; context?: { path?: string } } {
  try {
    fn();
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('expected it to throw');
}

async function stored(registry: ReturnType<typeof createEventRegistry>, payload: unknown, schemaVersion?: number): Promise<OutboxEvent> {
  let n = 0;
  return buildEvent({ type: base.type, aggregateId: 'o-1', payload, schemaVersion }, registry, applyOutboxDefaults({ source: 'test' }), () => `id-${n++}`);
}

describe('compatibility of two versions (JSON Schema)', () => {
  const schemas = (schema: z.ZodType): NonNullable<EventType['jsonSchema']> => defineEventType({ ...base, schemaVersion: 1, schema }).jsonSchema as NonNullable<EventType['jsonSchema']>;
  const v1 = schemas(v1Schema);

  test('an optional field added is BACKWARD and FORWARD compatible (FULL)', () => {
    expect(compatibilityIssues(v1, schemas(v1Schema.extend({ currency: z.string().optional() })), 'FULL')).toEqual([]);
  });

  test('a required field added breaks BACKWARD, naming the field: a v2 consumer reading a v1 event finds it missing', () => {
    const issues = compatibilityIssues(v1, schemas(v1Schema.extend({ currency: z.string() })), 'BACKWARD');
    expect(issues).toEqual([{ path: '$.currency', message: 'required by the reader, not written by the writer', direction: 'backward' }]);
    expect(compatibilityIssues(v1, schemas(v1Schema.extend({ currency: z.string() })), 'FORWARD')).toEqual([]);
  });

  test('a required field removed is BACKWARD compatible but breaks FORWARD', () => {
    const v2 = schemas(v1Schema.omit({ totalCents: true }));
    expect(compatibilityIssues(v1, v2, 'BACKWARD')).toEqual([]);
    expect(compatibilityIssues(v1, v2, 'FORWARD')).toEqual([expect.objectContaining({ path: '$.totalCents', direction: 'forward' })]);
  });

  test('a type widened is BACKWARD compatible; narrowed it is not', () => {
    const wide = schemas(v1Schema.extend({ totalCents: z.number() }));
    expect(compatibilityIssues(v1, wide, 'BACKWARD')).toEqual([]);
    expect(compatibilityIssues(v1, wide, 'FORWARD')).toEqual([expect.objectContaining({ path: '$.totalCents', message: expect.stringContaining('may write number') })]);
    expect(compatibilityIssues(v1, schemas(v1Schema.extend({ totalCents: z.string() })), 'BACKWARD')).toEqual([expect.objectContaining({ path: '$.totalCents' })]);
  });

  test('an enum value added is BACKWARD compatible; a consumer of the old enum cannot read it (FORWARD)', () => {
    const old = schemas(z.object({ state: z.enum(['open', 'closed']) }));
    const added = schemas(z.object({ state: z.enum(['open', 'closed', 'held']) }));
    expect(compatibilityIssues(old, added, 'BACKWARD')).toEqual([]);
    expect(compatibilityIssues(old, added, 'FORWARD')).toEqual([expect.objectContaining({ path: '$.state', message: expect.stringContaining('"held"') })]);
  });

  test('nested fields and array elements are compared, with their paths', () => {
    const line = z.object({ sku: z.string(), quantity: z.number().int() });
    const old = schemas(z.object({ lines: z.array(line) }));
    const next = schemas(z.object({ lines: z.array(line.extend({ quantity: z.number().int().min(1) })) }));
    expect(compatibilityIssues(old, next, 'BACKWARD')).toEqual([expect.objectContaining({ path: '$.lines[].quantity', message: expect.stringContaining('minimum 1') })]);
  });

  test('nullable and unions: a reader with a branch for each writer branch accepts it', () => {
    expect(readerIssues({ anyOf: [{ type: 'string' }, { type: 'null' }] }, { type: 'string' })).toEqual([]);
    expect(readerIssues({ type: 'string' }, { anyOf: [{ type: 'string' }, { type: 'null' }] })).toEqual([expect.objectContaining({ message: expect.stringContaining('may write null') })]);
    expect(readerIssues({ type: ['string', 'null'] }, { type: 'string' })).toEqual([]);
  });

  test('local $refs are followed', () => {
    const reader = { $defs: { id: { type: 'string', minLength: 3 } }, type: 'object', properties: { id: { $ref: '#/$defs/id' } } };
    const writer = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] };
    expect(readerIssues(reader, writer)).toEqual([expect.objectContaining({ path: '$.id', message: expect.stringContaining('minLength 3') })]);
  });
});

describe('registering versions', () => {
  test('a version that breaks the compatibility it promises is refused with INCOMPATIBLE_SCHEMA naming the field', () => {
    const v2 = defineEventType({ ...base, schemaVersion: 2, schema: v1Schema.extend({ currency: z.string() }) });
    const err = thrown(() => createEventRegistry([placedV1, v2]));
    expect(err).toMatchObject({ code: OutboxErrorCode.incompatibleSchema, context: { type: base.type, path: '$.currency' } });
    expect(err.message).toContain('orders.OrderPlaced v2 breaks its BACKWARD compatibility with v1: $.currency: required by the reader, not written by the writer');
  });

  test('a transitive mode is checked against every earlier version', () => {
    const v2 = defineEventType({ ...base, schemaVersion: 2, schema: v1Schema.extend({ currency: z.string().optional() }) });
    // v3 drops totalCents, which v1's (and v2's) consumers require: checked against v1 first.
    const v3 = defineEventType({ ...base, schemaVersion: 3, compatibility: 'FORWARD_TRANSITIVE', schema: v1Schema.extend({ currency: z.string().optional() }).omit({ totalCents: true }) });
    expect(thrown(() => createEventRegistry([placedV1, v2, v3]))).toMatchObject({ code: OutboxErrorCode.incompatibleSchema, message: expect.stringContaining('with v1') });
  });

  test('compatibility NONE is not checked; a function schema with more than one version must give its JSON Schema', () => {
    const loose = defineEventType({ ...base, schemaVersion: 2, compatibility: 'NONE', schema: z.object({ id: z.number() }) });
    expect(() => createEventRegistry([placedV1, loose])).not.toThrow();
    const fn = defineEventType({ ...base, schemaVersion: 2, schema: (p: unknown) => p });
    expect(thrown(() => createEventRegistry([placedV1, fn]))).toMatchObject({ code: OutboxErrorCode.invalidConfig, message: expect.stringContaining('v2 has no JSON Schema, so') });
    const given = defineEventType({ ...base, schemaVersion: 2, schema: (p: unknown) => p, jsonSchema: { type: 'object', properties: { orderId: { type: 'string' } }, required: ['orderId'] } });
    expect(() => createEventRegistry([placedV1, given])).not.toThrow();
  });

  test('a jsonSchema that is not a JSON Schema is refused with INVALID_CONFIG naming the event type', () => {
    for (const jsonSchema of ['object', [], null]) {
      const err = thrown(() => defineEventType({ ...base, schemaVersion: 2, schema: (p: unknown) => p, jsonSchema: jsonSchema as never }));
      expect(err).toMatchObject({ code: OutboxErrorCode.invalidConfig, context: { type: base.type } });
      expect(err.message).toBe('event type "orders.OrderPlaced": jsonSchema must be a JSON Schema object');
    }
  });

  test('a publish version every older version cannot reach by upcasts is refused at registration', () => {
    const v2 = defineEventType({ ...base, schemaVersion: 2, schema: v1Schema });
    expect(thrown(() => createEventRegistry([placedV1, v2], { publish: { [base.type]: 2 } }))).toMatchObject({ code: OutboxErrorCode.invalidConfig, message: expect.stringContaining('v2 declares no upcast from v1') });
    expect(thrown(() => createEventRegistry([placedV1], { publish: { [base.type]: 3 } }))).toMatchObject({ code: OutboxErrorCode.invalidConfig });
    expect(thrown(() => defineEventType({ ...base, schemaVersion: 3, schema: v1Schema, upcast: { from: placedV1, transform: (p) => p } }))).toMatchObject({ code: OutboxErrorCode.invalidConfig, message: expect.stringContaining('only from v2') });
  });
});

describe('publishing in the configured version', () => {
  const v2Schema = v1Schema.extend({ currency: z.string().length(3) });
  const placedV2 = defineEventType({
    ...base,
    schemaVersion: 2,
    compatibility: 'FORWARD',
    schema: v2Schema,
    upcast: { from: placedV1, transform: (v1) => ({ ...v1, currency: v1.note === 'bad' ? 'not a currency' : 'EUR' }) },
  });
  const registry = createEventRegistry([placedV1, placedV2], { publish: { [base.type]: 'latest' } });

  test('an event written as v1 is published as v2: upcast, validated against v2, with its hash', async () => {
    const event = await stored(createEventRegistry([placedV1]), { orderId: 'o-1', totalCents: 5 });
    const published = await registry.asPublished(event);
    expect(published).toMatchObject({ id: event.id, schemaVersion: 2, payload: { orderId: 'o-1', totalCents: 5, currency: 'EUR' } });
    expect(published.payloadHash).not.toBe(event.payloadHash);
    expect(event).toMatchObject({ schemaVersion: 1, payload: { orderId: 'o-1', totalCents: 5 } });
  });

  test('an upcast whose result v2 refuses fails with UPCAST_FAILED and the reason', async () => {
    const event = await stored(createEventRegistry([placedV1]), { orderId: 'o-1', totalCents: 5, note: 'bad' });
    await expect(registry.asPublished(event)).rejects.toMatchObject({ code: OutboxErrorCode.upcastFailed, message: expect.stringContaining('gave a payload v2 refuses') });
  });

  test('without a publish version each event goes out as written; add() defaults to the publish version and refuses a newer one', async () => {
    const asWritten = createEventRegistry([placedV1, placedV2]);
    const event = await stored(asWritten, { orderId: 'o-1', totalCents: 5 }, 1);
    expect(await asWritten.asPublished(event)).toBe(event);
    const pinned = createEventRegistry([placedV1, placedV2], { publish: { [base.type]: 1 } });
    expect((await stored(pinned, { orderId: 'o-1', totalCents: 5 })).schemaVersion).toBe(1);
    await expect(stored(pinned, { orderId: 'o-1', totalCents: 5, currency: 'EUR' }, 2)).rejects.toMatchObject({ code: OutboxErrorCode.invalidEvent, message: expect.stringContaining('does not downcast') });
  });
});
