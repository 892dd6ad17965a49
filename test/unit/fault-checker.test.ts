/**
 * The fault harness's checker (test/faults/checker.ts), on small made-up runs: what counts as lost,
 * as destroyed with a deleted topic, as misrecorded, and how long an ordered key stood still.
 */
import { v7 } from 'uuid';
import type { AuditRow } from '../support/pipeline-store';
import { check, longestStall, type CheckerInput, type SeenMessage } from '../faults/checker';

const T0 = Date.UTC(2026, 11, 4, 12, 0, 0);
const idAt = (ms: number): string => v7({ msecs: T0 + ms });

function row(id: string, fields: Partial<AuditRow> = {}): AuditRow {
  return { id, status: 'published', lastError: null, aggregateId: 'k', sequence: null, partition: 0, offset: null, publishedAt: null, ...fields };
}

function input(stored: AuditRow[], messages: SeenMessage[], extra: Partial<CheckerInput> = {}): CheckerInput {
  const committed = new Map(stored.map((r) => [r.id, { key: r.aggregateId, ordered: r.sequence !== null }]));
  const effects = new Map(messages.map((m) => [m.id, 1]));
  return { committed, toldCommitted: new Set(committed.keys()), aborted: new Set(), stored, messages, effects, deletions: [], ...extra };
}

describe('the fault checker', () => {
  test('an ordered key stands still from when its next event could go (written, its predecessor published) until it is published', () => {
    const [a, b, c] = [idAt(0), idAt(500), idAt(20_000)];
    const stored = [
      row(a, { sequence: 1, publishedAt: new Date(T0 + 1_000) }),
      row(b, { sequence: 2, publishedAt: new Date(T0 + 10_000) }), // could go at 1 s: 9 s
      row(c, { sequence: 3, publishedAt: new Date(T0 + 21_000) }), // written at 20 s: 1 s
      row(idAt(0), { aggregateId: 'unordered', publishedAt: new Date(T0 + 60_000) }),
    ];
    expect(longestStall(stored)).toEqual({ ms: 9_000, key: 'k', from: T0 + 1_000 });
  });

  test('an event published to a life of the topic deleted before anyone could read it went with the topic; one never published, or published earlier and never seen, is lost', () => {
    const [kept, destroyed, unseen, neverSent] = [idAt(0), idAt(1), idAt(2), idAt(3)];
    const stored = [
      row(kept, { offset: '0', publishedAt: new Date(T0 + 5_000) }),
      row(destroyed, { offset: '1', publishedAt: new Date(T0 + 6_500) }), // after the recorder's last read
      row(unseen, { offset: '2', publishedAt: new Date(T0 + 5_500) }), // before it: it should have been read
      row(neverSent, { status: 'pending' }),
    ];
    const messages: SeenMessage[] = [{ incarnation: 0, partition: 0, offset: 0, key: 'k', id: kept }];
    const result = check(input(stored, messages, { deletions: [{ readTo: T0 + 6_000, at: T0 + 7_000 }] }));
    expect(result.counts).toMatchObject({ lost: 2, lostWithTopic: 1, unresolved: 1, inboxWrong: 0, inboxApplied: 1 });
    expect(result.lostIds.sort()).toEqual([unseen, neverSent].sort());
  });

  test('an event recorded at a position that holds another message is lost, even when a later copy carries its id', () => {
    const [first, second] = [idAt(0), idAt(1)];
    const stored = [row(first, { offset: '0', publishedAt: new Date(T0 + 1_000) }), row(second, { offset: '0', publishedAt: new Date(T0 + 2_000) })];
    const messages: SeenMessage[] = [
      { incarnation: 0, partition: 0, offset: 0, key: 'k', id: first },
      { incarnation: 0, partition: 0, offset: 1, key: 'k', id: second },
    ];
    expect(check(input(stored, messages)).lostIds).toEqual([second]);
  });

  test('copies out of sequence order are order violations; an event applied twice is an inbox fault', () => {
    const [one, two] = [idAt(0), idAt(1)];
    const stored = [row(one, { sequence: 1, offset: '1', publishedAt: new Date(T0 + 2_000) }), row(two, { sequence: 2, offset: '0', publishedAt: new Date(T0 + 1_000) })];
    const messages: SeenMessage[] = [
      { incarnation: 0, partition: 0, offset: 0, key: 'k', id: two },
      { incarnation: 0, partition: 0, offset: 1, key: 'k', id: one },
    ];
    const result = check(input(stored, messages, { effects: new Map([[one, 1], [two, 2]]) }));
    expect(result.counts).toMatchObject({ orderViolations: 1, inboxWrong: 1, inboxApplied: 1, lost: 0 });
  });
});
