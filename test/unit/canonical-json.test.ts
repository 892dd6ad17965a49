import { canonicalJson, OutboxError, OutboxErrorCode, payloadHash } from '../../domain/outbox';

describe('canonicalJson', () => {
  test('sorts keys at every depth and drops undefined properties', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: 'x' }, u: undefined })).toBe(
      '{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}',
    );
  });

  test('the same payload in any key order has the same hash', () => {
    expect(payloadHash(canonicalJson({ a: 1, b: [1, 2] }))).toBe(payloadHash(canonicalJson({ b: [1, 2], a: 1 })));
    expect(payloadHash(canonicalJson({ a: 1 }))).toMatch(/^[0-9a-f]{64}$/);
  });

  const circular: Record<string, unknown> = {};
  circular.again = { back: circular };

  test.each<[string, unknown, string]>([
    ['BigInt', { n: 1n }, '$.n'],
    ['function', { f: () => 1 }, '$.f'],
    ['symbol', { s: Symbol('x') }, '$.s'],
    ['NaN', { n: NaN }, '$.n'],
    ['Infinity', [1, Infinity], '$[1]'],
    ['undefined in an array', [1, undefined], '$[1]'],
    ['a circular reference', circular, '$.again.back'],
    ['a Date', { at: new Date() }, '$.at'],
    ['a Map', { m: new Map() }, '$.m'],
  ])('%s is not JSON-serialisable: typed error naming the path', (_what, value, path) => {
    let caught: unknown;
    try {
      canonicalJson(value);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(OutboxError);
    expect(caught).toMatchObject({ code: OutboxErrorCode.notSerializable, context: { path } });
  });

  test('the same object twice (not a cycle) is fine', () => {
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });
});
