/**
 * The key sequencer's run activity (pure logic: a fake store and a fake FastPath): it hands the
 * FastPath only the run's pending events, in the order asked, read in two requests whatever the
 * run's length, and answers with what it published and the key's open events after the run.
 */
import { createPublishRun } from '../../activities/publish-run';
import { OutboxStatus, type OutboxEvent } from '../../domain/outbox';
import type { FastPathResult } from '../../workers/relay/fast-path';
import { sampleEvent } from '../support/sample-event';

describe('publishRun', () => {
  const events = [
    sampleEvent({ id: 'e1', sequence: 1 }),
    sampleEvent({ id: 'e2', sequence: 2, status: OutboxStatus.published }),
    sampleEvent({ id: 'e3', sequence: 3 }),
    sampleEvent({ id: 'e4', sequence: 4 }),
  ];
  const reads: string[] = [];
  const store = {
    get: async (id: string) => {
      reads.push('get');
      return events.find((e) => e.id === id) ?? null;
    },
    openEventsOfKey: async (_topic: string, _key: string, afterSequence: number, limit: number) => {
      reads.push('openEventsOfKey');
      return events.filter((e) => e.status !== OutboxStatus.published && (e.sequence ?? 0) > afterSequence).slice(0, limit);
    },
  };
  beforeEach(() => reads.splice(0));

  test('hands the FastPath the pending events of the run, in order, read in two requests, and answers with the ids it published and the key\'s open events after the run', async () => {
    // Arrange
    const handed: string[][] = [];
    const runs = {
      publish: async (run: readonly OutboxEvent[]): Promise<FastPathResult> => {
        handed.push(run.map((e) => e.id));
        return { published: run.slice(0, 1), fallback: run.slice(1), skipped: [] };
      },
    };

    // Act
    const result = await createPublishRun({ store, runs })(['e1', 'e2', 'gone', 'e3'], 1);

    // Assert
    expect(handed).toEqual([['e1', 'e3']]);
    expect(reads).toEqual(['get', 'openEventsOfKey']);
    // e3 was in the run (its sequencer has it): what it reads ahead is after the run.
    expect(result).toEqual({ published: ['e1'], following: [{ eventId: 'e4', sequence: 4, type: events[3]?.type, aggregateId: events[3]?.aggregateId }] });
  });

  test('answers with the receipts the store recorded, in the order of the ids it published, and with none when the FastPath did not record them all', async () => {
    // Arrange
    const publishedAt = new Date('2026-12-07T00:00:00.000Z');
    const landing = (event: OutboxEvent, offset: number) => ({ eventId: event.id, topic: event.topic, partition: 0, offset: String(offset), publishedAt, attempts: 1, alreadyPublished: false });
    const recorded = { publish: async (run: readonly OutboxEvent[]): Promise<FastPathResult> => ({ published: [...run], fallback: [], skipped: [], receipts: run.map(landing) }) };
    const unrecorded = { publish: async (run: readonly OutboxEvent[]): Promise<FastPathResult> => ({ published: [...run], fallback: [], skipped: [] }) };

    // Act
    const withReceipts = await createPublishRun({ store, runs: recorded })(['e1', 'e3']);
    const without = await createPublishRun({ store, runs: unrecorded })(['e1', 'e3']);

    // Assert: as the workflow reports a publication it did not send itself.
    expect(withReceipts.published).toEqual(['e1', 'e3']);
    expect(withReceipts.receipts).toEqual([
      { eventId: 'e1', topic: events[0]?.topic, partition: 0, offset: '0', publishedAt: publishedAt.toISOString(), attempts: 1, alreadyPublished: true },
      { eventId: 'e3', topic: events[2]?.topic, partition: 0, offset: '1', publishedAt: publishedAt.toISOString(), attempts: 1, alreadyPublished: true },
    ]);
    expect(without.published).toEqual(['e1', 'e3']);
    expect(without).not.toHaveProperty('receipts');
  });

  test('publishes nothing without a FastPath, or for an empty run', async () => {
    // Arrange
    const runs = { publish: jest.fn(async (): Promise<FastPathResult> => ({ published: [], fallback: [], skipped: [] })) };

    // Act
    const withoutRuns = await createPublishRun({ store })(['e1', 'e3']);
    const empty = await createPublishRun({ store, runs })([]);

    // Assert
    expect(withoutRuns).toEqual({ published: [], following: [] });
    expect(empty).toEqual({ published: [], following: [] });
    expect(runs.publish).not.toHaveBeenCalled();
  });
});
