import { z } from 'zod';
import { CloudEvent, Kafka as SdkKafka, type KafkaMessage } from 'cloudevents';
import {
  applyOutboxDefaults,
  buildEvent,
  checkTopicName,
  createEventRegistry,
  defineEventType,
  OutboxErrorCode,
  readCloudEventHeaders,
  toKafkaMessage,
  type NewEvent,
} from '../../domain/outbox';

const placedV1 = defineEventType({
  type: 'orders.OrderPlaced',
  schemaVersion: 1,
  aggregateType: 'order',
  topic: 'orders.v1',
  schema: z.object({ orderId: z.string(), totalCents: z.number().int() }),
});
const placedV2 = defineEventType({
  type: 'orders.OrderPlaced',
  schemaVersion: 2,
  aggregateType: 'order',
  topic: 'orders.v2',
  // A function schema gives no JSON Schema to check compatibility with: this test's v2 promises none.
  compatibility: 'NONE',
  schema: (payload: unknown) => {
    if (typeof payload !== 'object' || payload === null || !('orderId' in payload)) throw new Error('orderId is required');
    return payload;
  },
  key: (_aggregateId, payload) => `tenant-1/${(payload as { orderId: string }).orderId}`,
});
const registry = createEventRegistry([placedV1, placedV2]);
const options = applyOutboxDefaults({ source: 'unit', clock: () => new Date('2026-01-02T03:04:05.000Z'), maxPayloadBytes: 100 });
const ids = (): string => '01a21b9e-f9fa-7000-a581-732e36d803a2';

function build(event: NewEvent) {
  return buildEvent(event, registry, options, ids);
}

describe('buildEvent', () => {
  test('builds the CloudEvents envelope with the newest version by default, its key and hash', async () => {
    const event = await build({ type: 'orders.OrderPlaced', aggregateId: 'o-1', payload: { orderId: 'o-1' } });
    expect(event).toMatchObject({
      id: ids(),
      specVersion: '1.0',
      envelopeVersion: 1,
      source: 'unit',
      schemaVersion: 2,
      topic: 'orders.v2',
      key: 'tenant-1/o-1',
      status: 'pending',
      attempts: 0,
      occurredAt: new Date('2026-01-02T03:04:05.000Z'),
    });
    expect(event.payloadHash).toMatch(/^[0-9a-f]{64}$/);
  });

  test('an explicit schema version picks that contract', async () => {
    const event = await build({ type: 'orders.OrderPlaced', schemaVersion: 1, aggregateId: 'o-1', payload: { totalCents: 5, orderId: 'o-1' } });
    expect(event).toMatchObject({ schemaVersion: 1, topic: 'orders.v1', key: 'o-1', payload: { orderId: 'o-1', totalCents: 5 } });
  });

  test.each<[string, NewEvent, string]>([
    ['unregistered type', { type: 'nope', aggregateId: 'a', payload: {} }, OutboxErrorCode.unregisteredEventType],
    ['schema failure (Standard Schema)', { type: 'orders.OrderPlaced', schemaVersion: 1, aggregateId: 'a', payload: { orderId: 1 } }, OutboxErrorCode.invalidPayload],
    ['schema failure (function)', { type: 'orders.OrderPlaced', aggregateId: 'a', payload: {} }, OutboxErrorCode.invalidPayload],
    ['oversized payload', { type: 'orders.OrderPlaced', aggregateId: 'a', payload: { orderId: 'x'.repeat(200) } }, OutboxErrorCode.payloadTooLarge],
    ['non-serialisable payload', { type: 'orders.OrderPlaced', aggregateId: 'a', payload: { orderId: 'a', n: 1n } }, OutboxErrorCode.notSerializable],
    ['empty key', { type: 'orders.OrderPlaced', aggregateId: 'a', key: '', payload: { orderId: 'a' } }, OutboxErrorCode.invalidKey],
    ['missing aggregate id', { type: 'orders.OrderPlaced', aggregateId: '', payload: { orderId: 'a' } }, OutboxErrorCode.invalidEvent],
    ['bad header name', { type: 'orders.OrderPlaced', aggregateId: 'a', payload: { orderId: 'a' }, headers: { extra: { 'Bad-Name': 'x' } } }, OutboxErrorCode.invalidEvent],
    ['invalid occurredAt', { type: 'orders.OrderPlaced', aggregateId: 'a', payload: { orderId: 'a' }, occurredAt: new Date('nope') }, OutboxErrorCode.invalidEvent],
  ])('%s → typed error', async (_name, event, code) => {
    await expect(build(event)).rejects.toMatchObject({ name: 'OutboxError', code });
  });

  test('bad input matrix: a payload exactly at the size limit is accepted, one byte over is PAYLOAD_TOO_LARGE; headers are bounded', async () => {
    // {"orderId":"<n chars>","totalCents":1} is 29 + n bytes of canonical JSON; the limit here is 100.
    const payload = (n: number) => ({ orderId: 'x'.repeat(n), totalCents: 1 });
    expect(Buffer.byteLength(JSON.stringify(payload(71)))).toBe(100);
    await expect(build({ type: 'orders.OrderPlaced', schemaVersion: 1, aggregateId: 'o-1', payload: payload(71) })).resolves.toMatchObject({ type: 'orders.OrderPlaced' });
    await expect(build({ type: 'orders.OrderPlaced', schemaVersion: 1, aggregateId: 'o-1', payload: payload(72) })).rejects.toMatchObject({
      code: OutboxErrorCode.payloadTooLarge,
      message: expect.stringContaining('101 bytes, over the limit of 100'),
    });
    const extra = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`h${i}`, 'v']));
    await expect(build({ type: 'orders.OrderPlaced', schemaVersion: 1, aggregateId: 'o-1', payload: payload(1), headers: { extra } })).rejects.toMatchObject({
      code: OutboxErrorCode.invalidEvent,
      message: expect.stringContaining('33 extra headers, over the limit of 32'),
    });
  });

  test('schema issues are reported with their paths', async () => {
    await expect(build({ type: 'orders.OrderPlaced', schemaVersion: 1, aggregateId: 'a', payload: { orderId: 'a', totalCents: 1.5 } })).rejects.toMatchObject({
      context: { issues: [expect.objectContaining({ path: '$.totalCents' })] },
    });
  });
});

describe('event type registration', () => {
  test.each(['', '.', '..', 'has space', 'x'.repeat(250), 'ümlaut'])('topic %j is refused at registration', (topic) => {
    expect(() => checkTopicName(topic)).toThrow(expect.objectContaining({ code: OutboxErrorCode.invalidTopic }));
    expect(() => defineEventType({ type: 't', schemaVersion: 1, aggregateType: 'a', topic, schema: (p: unknown) => p })).toThrow(
      expect.objectContaining({ code: OutboxErrorCode.invalidTopic }),
    );
  });

  test('a type and version registered twice is a config error', () => {
    expect(() => createEventRegistry([placedV1, placedV1])).toThrow(expect.objectContaining({ code: OutboxErrorCode.invalidConfig }));
  });

  test('bad schema version and missing schema are config errors', () => {
    expect(() => defineEventType({ type: 't', schemaVersion: 0, aggregateType: 'a', topic: 't', schema: (p: unknown) => p })).toThrow(
      expect.objectContaining({ code: OutboxErrorCode.invalidConfig }),
    );
  });

  test('broken outbox options fail fast naming the option', () => {
    expect(() => applyOutboxDefaults({ maxPayloadBytes: -1 })).toThrow(/maxPayloadBytes/);
  });
});

describe('CloudEvents Kafka binding', () => {
  test('binary mode: payload as value, attributes as ce_ headers, key as message key', async () => {
    const event = await build({
      type: 'orders.OrderPlaced',
      schemaVersion: 1,
      aggregateId: 'o-1',
      payload: { totalCents: 5, orderId: 'o-1' },
      headers: { correlationId: 'c', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', extra: { tenant: 't1' } },
    });
    const message = toKafkaMessage(event);
    expect(message.key).toBe('o-1');
    expect(message.value).toBe('{"orderId":"o-1","totalCents":5}');
    expect(message.headers).toMatchObject({
      ce_specversion: '1.0',
      ce_id: event.id,
      ce_type: 'orders.OrderPlaced',
      ce_source: 'unit',
      ce_subject: 'o-1',
      ce_time: '2026-01-02T03:04:05.000Z',
      ce_schemaversion: '1',
      'content-type': 'application/json',
      ce_correlationid: 'c',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      ce_tenant: 't1',
    });
  });
});

describe('extra headers never overwrite a CloudEvents attribute', () => {
  test.each(['id', 'type', 'source', 'time', 'specversion', 'subject', 'datacontenttype', 'schemaversion', 'payloadhash', 'correlationid', 'traceparent'])(
    'extra header "%s" is refused at add() with INVALID_EVENT',
    async (name) => {
      await expect(build({ type: 'orders.OrderPlaced', schemaVersion: 1, aggregateId: 'o-1', payload: { orderId: 'o-1', totalCents: 1 }, headers: { extra: { [name]: 'spoofed' } } })).rejects.toMatchObject({
        code: OutboxErrorCode.invalidEvent,
        message: expect.stringContaining(`reserved`),
      });
    },
  );

  test('an event stored before the check keeps its own attributes on the wire (ce_id is the event id)', async () => {
    const event = await build({ type: 'orders.OrderPlaced', schemaVersion: 1, aggregateId: 'o-1', payload: { orderId: 'o-1', totalCents: 1 } });
    // As an older version accepted it, read back from the store.
    const legacy = { ...event, headers: { extra: { id: 'spoofed', type: 'spoofed', tenant: 't1' } } };
    const message = toKafkaMessage(legacy);
    expect(message.headers.ce_id).toBe(event.id);
    expect(message.headers.ce_type).toBe('orders.OrderPlaced');
    expect(message.headers.ce_tenant).toBe('t1');
  });
});

describe('CloudEvents Kafka binding, read by the CloudEvents SDK (cloudevents, a dev dependency only)', () => {
  test("the SDK's Kafka binding reads our message as a valid CloudEvent with our attributes and extensions", async () => {
    // Arrange
    const event = await build({
      type: 'orders.OrderPlaced',
      schemaVersion: 1,
      aggregateId: 'o-1',
      payload: { totalCents: 5, orderId: 'o-1' },
      headers: { correlationId: 'c', extra: { tenant: 't1' } },
    });
    const message = toKafkaMessage(event);

    // Act
    const kafkaMessage: KafkaMessage<string> = { key: message.key, value: message.value, headers: message.headers, body: message.value };
    const received = SdkKafka.toEvent(kafkaMessage) as CloudEvent<unknown>;

    // Assert
    expect(received.validate()).toBe(true);
    expect(received).toMatchObject({
      specversion: '1.0',
      id: event.id,
      type: 'orders.OrderPlaced',
      source: 'unit',
      subject: 'o-1',
      time: '2026-01-02T03:04:05.000Z',
      datacontenttype: 'application/json',
      schemaversion: '1',
      aggregatetype: event.aggregateType,
      payloadhash: event.payloadHash,
      correlationid: 'c',
      tenant: 't1',
      partitionkey: 'o-1',
      data: { orderId: 'o-1', totalCents: 5 },
    });
  });

  test('a message the SDK makes in binary mode is read by readCloudEventHeaders', () => {
    // Arrange
    const sent = new CloudEvent({ id: 'evt-1', type: 'payments.PaymentTaken', source: 'payments', subject: 'p-1', time: '2026-01-02T03:04:05.000Z', schemaversion: '2', partitionkey: 'p-1', data: { amount: 1 } });
    const message = SdkKafka.binary(sent);

    // Act
    const read = readCloudEventHeaders(message.headers as Record<string, string>);

    // Assert
    expect(read).toMatchObject({ id: 'evt-1', type: 'payments.PaymentTaken', source: 'payments', subject: 'p-1', time: '2026-01-02T03:04:05.000Z', schemaVersion: 2 });
  });
});
