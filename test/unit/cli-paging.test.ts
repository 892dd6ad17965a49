/**
 * `txoutbox replay --from --to` takes every published event of the range, however many: the store
 * is read page by page (it used to stop silently at 10,000). Pure paging logic over a list function.
 */
import type { ListQuery, OutboxEvent } from '../../domain/outbox';
import { listAll } from '../../workers/cli/cli';

/** A store's `list` over ids "e00000".."eNNNNN" (ascending, as event ids are), recording its calls. */
function listOver(count: number): { list: (query: ListQuery) => Promise<OutboxEvent[]>; calls: ListQuery[] } {
  const ids = Array.from({ length: count }, (_, i) => `e${String(i).padStart(6, '0')}`);
  const calls: ListQuery[] = [];
  return {
    calls,
    list: async (query) => {
      calls.push(query);
      const after = ids.filter((id) => (query.afterId === undefined || id > query.afterId) && (query.beforeId === undefined || id < query.beforeId));
      return after.slice(0, query.limit).map((id) => ({ id }) as OutboxEvent);
    },
  };
}

describe('listAll (replay over a time range)', () => {
  test('more events than one page: every one, in order, once', async () => {
    const { list, calls } = listOver(25_001);

    const events = await listAll(list, { status: 'published' }, 1_000);

    expect(events).toHaveLength(25_001);
    expect(new Set(events.map((e) => e.id)).size).toBe(25_001);
    expect(events[25_000]?.id).toBe('e025000');
    expect(calls).toHaveLength(26);
    expect(calls.every((c) => c.status === 'published' && c.limit === 1_000)).toBe(true);
  });

  test('a range boundary is kept on every page, and an exact multiple of the page size ends with one empty read', async () => {
    const { list, calls } = listOver(5_000);

    const events = await listAll(list, { afterId: 'e000999', beforeId: 'e003000' }, 500);

    expect(events.map((e) => e.id)).toEqual(Array.from({ length: 2_000 }, (_, i) => `e${String(i + 1_000).padStart(6, '0')}`));
    expect(calls.every((c) => c.beforeId === 'e003000')).toBe(true);
    expect(calls).toHaveLength(5);
  });
});
