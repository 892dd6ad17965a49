import canonicalize from 'canonicalize';
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

describe('canonicalJson against the canonicalize package (RFC 8785, JCS)', () => {
  // canonicalize is the reference here, not a dependency: it serialises Dates, class instances and
  // toJSON results silently, where add() must refuse them with a path (the tests above).
  test.each<[string, unknown]>([
    ['RFC 8785 section 3.2.2 sample', { numbers: [333333333.3333333, 1e30, 4.5, 2e-3, 0.000000000000000000000000001], string: '\u20ac$\u000f\nA\'B"\\\\"/', literals: [null, true, false] }],
    ['keys sorted by UTF-16 code unit', { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' }],
    ['number edge cases', [0, -0, 1e21, 1e-7, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, -1.5e-9, 123456789012345680000, 9007199254740992]],
    ['nested objects and arrays', { b: [{ z: 1, a: [true, { y: null, x: 'é' }] }], a: {} }],
    ['strings with control characters and escapes', ['\u0000\u001f\u007f', 'tab\tquote"back\\slash', '\u2028\u2029', '日本語']],
  ])('%s: the same text', (_what, value) => {
    expect(canonicalJson(value)).toBe(canonicalize(value));
  });
});
