import type { FeedBatch, OutboxEvent } from '../../domain/outbox';
import { FeedCheckpoints } from '../../workers/relay/checkpoints';

/** A batch of `events` events whose save records its name in `saves`. */
function batch(name: string, events: number, saves: string[]): FeedBatch {
  return {
    events: new Array<OutboxEvent>(events).fill({} as OutboxEvent),
    checkpoint: async () => {
      saves.push(name);
    },
  };
}

/** Checkpoints every `everyMs`, recording which batches were saved and each save's count of events. */
function recorded(everyMs: number): { checkpoints: FeedCheckpoints; saves: string[]; counted: number[] } {
  const counted: number[] = [];
  return { checkpoints: new FeedCheckpoints(everyMs, (events) => counted.push(events)), saves: [], counted };
}

describe('when a relay saves its feed position', () => {
  test('while busy, at most one save per interval: a later save covers the batches before it, and flush saves the rest', async () => {
    // Arrange
    const { checkpoints, saves, counted } = recorded(60_000);

    // Act
    await checkpoints.dispatched(batch('a', 3, saves));
    await checkpoints.dispatched(batch('b', 2, saves));
    await checkpoints.dispatched(batch('c', 4, saves));
    await checkpoints.flush();

    // Assert: the first is saved at once (no save yet), b and c by one save at the end.
    expect(saves).toEqual(['a', 'c']);
    expect(counted).toEqual([3, 6]);
  });

  test('an idle batch is saved as it comes and does not delay the next save of events', async () => {
    // Arrange
    const { checkpoints, saves, counted } = recorded(60_000);

    // Act
    await checkpoints.dispatched(batch('empty-1', 0, saves));
    await checkpoints.dispatched(batch('empty-2', 0, saves));
    await checkpoints.dispatched(batch('a', 1, saves));
    await checkpoints.flush();

    // Assert
    expect(saves).toEqual(['empty-1', 'empty-2', 'a']);
    expect(counted).toEqual([0, 0, 1]);
  });

  test('with an interval of 0 every batch is saved; a failed save is thrown by the next call, and a reopened feed starts clean', async () => {
    // Arrange
    const { checkpoints, saves } = recorded(0);
    const failing: FeedBatch = { events: [{} as OutboxEvent], checkpoint: () => Promise.reject(new Error('store down')) };

    // Act + Assert
    await checkpoints.dispatched(batch('a', 1, saves));
    await checkpoints.dispatched(failing);
    await expect(checkpoints.dispatched(batch('b', 1, saves))).rejects.toThrow('store down');
    checkpoints.open();
    await checkpoints.dispatched(batch('c', 1, saves));
    await checkpoints.flush();
    expect(saves).toEqual(['a', 'c']);
  });
});
