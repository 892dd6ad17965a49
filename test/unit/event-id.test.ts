import { v7 } from 'uuid';
import { createEventIdGenerator, eventIdTime, isEventId, minEventIdAt } from '../../domain/outbox';

describe('event ids (UUIDv7)', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  test('are UUIDv7 strings carrying their creation time', () => {
    jest.useFakeTimers({ now: 1_750_000_000_123 });
    const id = createEventIdGenerator()();
    expect(isEventId(id)).toBe(true);
    expect(eventIdTime(id)).toBe(1_750_000_000_123);
  });

  test('increase strictly within one millisecond and when the clock steps back', () => {
    const next = createEventIdGenerator();
    const ids: string[] = [];
    for (const now of [1000, 1000, 1000, 999, 1001]) {
      jest.useFakeTimers({ now });
      ids.push(next());
    }
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(5);
  });

  test('5000 ids in one millisecond stay ordered and distinct', () => {
    jest.useFakeTimers({ now: 42 });
    const next = createEventIdGenerator();
    const ids = Array.from({ length: 5000 }, () => next());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(5000);
    expect(ids.every(isEventId)).toBe(true);
  });

  test('minEventIdAt sorts before every id of that millisecond and after every id of the one before', () => {
    // The largest and smallest ids the layout allows in 4999 and 5000 ms, and one the generator makes.
    const lastOf4999 = v7({ msecs: 4999, seq: 0xffffffff, random: new Uint8Array(16).fill(0xff) });
    const firstOf5000 = v7({ msecs: 5000, seq: 0, random: new Uint8Array(16) });
    expect(minEventIdAt(5000)).toBe('00000000-1388-7000-8000-000000000000');
    expect(minEventIdAt(5000)).toBe(firstOf5000);
    expect(isEventId(minEventIdAt(5000))).toBe(true);
    expect(lastOf4999 < minEventIdAt(5000)).toBe(true);
    expect(minEventIdAt(0) <= createEventIdGenerator()()).toBe(true);
  });
});
