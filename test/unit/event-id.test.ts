import { createEventIdGenerator, eventIdTime, isEventId, minEventIdAt } from '../../domain/outbox';

describe('event ids (UUIDv7)', () => {
  test('are UUIDv7 strings carrying their creation time', () => {
    const id = createEventIdGenerator(() => 1_750_000_000_123)();
    expect(isEventId(id)).toBe(true);
    expect(eventIdTime(id)).toBe(1_750_000_000_123);
  });

  test('increase strictly within one millisecond and when the clock steps back', () => {
    const times = [1000, 1000, 1000, 999, 1001];
    const next = createEventIdGenerator(() => times.shift() ?? 1001);
    const ids = Array.from({ length: 5 }, () => next());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(5);
  });

  test('5000 ids in one millisecond stay ordered (counter overflow borrows the next millisecond)', () => {
    const next = createEventIdGenerator(() => 42);
    const ids = Array.from({ length: 5000 }, () => next());
    expect([...ids].sort()).toEqual(ids);
    expect(ids.every(isEventId)).toBe(true);
  });

  test('minEventIdAt sorts before every id of that millisecond and after every earlier one', () => {
    const at = createEventIdGenerator(() => 5000)();
    const before = createEventIdGenerator(() => 4999)();
    expect(minEventIdAt(5000) <= at).toBe(true);
    expect(before < minEventIdAt(5000)).toBe(true);
  });
});
