/**
 * The fault harness's independent checker, as a pure function of what it gathered: what the writers
 * were told, what the store says, every copy Kafka held (in each life of the topic), and what the
 * consumers' inbox applied.
 */
import { eventIdTime } from '../../domain/outbox';
import type { AuditRow } from '../support/pipeline-store';

/** One copy read from Kafka, in the life of the topic it was read from. */
export interface SeenMessage {
  incarnation: number;
  partition: number;
  offset: number;
  key: string;
  id: string;
}

export interface CheckerInput {
  /** What the writers were told committed, with the events of failed commits that the store has. */
  committed: ReadonlyMap<string, { key: string; ordered: boolean }>;
  /** What the writers were told committed, whether or not the store has it. */
  toldCommitted: ReadonlySet<string>;
  aborted: ReadonlySet<string>;
  stored: readonly AuditRow[];
  /** Every copy the recorder read, in any life of the topic (the current one is `deletions.length`). */
  messages: readonly SeenMessage[];
  /** How often the consumers' inbox applied each event. */
  effects: ReadonlyMap<string, number>;
  /**
   * The topic's deletions, oldest first (ms): life i ended `at` deletions[i], and the recorder had read
   * it to its end at `readTo`, just before (what was published between the two, it could not read).
   */
  deletions: ReadonlyArray<{ readTo: number; at: number }>;
}

export interface CheckerCounts {
  committed: number;
  aborted: number;
  published: number;
  stuck: number;
  messages: number;
  duplicates: number;
  /** Committed events neither in Kafka nor stuck, or recorded at a Kafka position that holds another message. */
  lost: number;
  /**
   * Committed events Kafka had (or was told to have) only in a life of the topic that was deleted
   * before the consumers read them: the deletion destroyed them, the outbox had delivered them.
   */
  lostWithTopic: number;
  /** Messages whose event id no writer committed. */
  invented: number;
  /** Events of aborted transactions found in the store or in Kafka. */
  abortedLeaked: number;
  /** Committed events whose row the store does not have (a commit that said yes but did not persist). */
  missingInStore: number;
  /** Ordered events that reached Kafka before an earlier event of their key. */
  orderViolations: number;
  /** Events neither published nor stuck with a reason. */
  unresolved: number;
  /** Events the inbox applied exactly once / not exactly once. */
  inboxApplied: number;
  inboxWrong: number;
  /**
   * The longest an ordered key made no progress while it had an event to publish: for each event, the
   * time from when it could go (written, and its predecessor published) until it was published.
   */
  longestStallMs: number;
}

export interface CheckerResult {
  counts: CheckerCounts;
  longestStallKey: string | null;
  /** When the longest stall began (ms since the epoch; null: no ordered event). */
  longestStallFrom: number | null;
  lostIds: string[];
  unresolvedIds: string[];
  /** A line per order violation. */
  violations: string[];
}

export function check(input: CheckerInput): CheckerResult {
  const { committed, stored, messages, effects, deletions } = input;
  const storedById = new Map(stored.map((r) => [r.id, r]));
  const current = deletions.length;
  const lifeAt = (t: number): number => deletions.filter((d) => d.at <= t).length;
  const seen = new Set(messages.map((m) => m.id));
  const inCurrent = new Set(messages.filter((m) => m.incarnation === current).map((m) => m.id));
  const applied = (id: string): boolean => (effects.get(id) ?? 0) >= 1;
  const stuck = stored.filter((r) => r.status === 'stuck');

  // A recorded position must hold its event, unless that life of the topic was deleted before it was read.
  const holding = new Map(messages.map((m) => [`${m.incarnation}:${m.partition}:${m.offset}`, m.id]));
  const misrecorded = stored
    .filter((r) => r.offset !== null && r.partition !== null)
    .filter((r) => {
      const holders = Array.from({ length: current + 1 }, (_, life) => holding.get(`${life}:${r.partition}:${r.offset}`));
      if (holders.includes(r.id)) return false;
      const life = r.publishedAt === null ? current : lifeAt(r.publishedAt.getTime());
      return life === current || holders[life] !== undefined;
    })
    .map((r) => r.id);

  // Destroyed with a deleted life of the topic: never in the current one and never applied, but read
  // in an earlier life, or published in the moment between the recorder's last read of a life and
  // its deletion (anything published before that moment and never read counts as lost).
  const publishedJustBeforeDeletion = (row: AuditRow | undefined): boolean => {
    const at = row?.publishedAt?.getTime();
    return at !== undefined && deletions.some((d) => at >= d.readTo && at < d.at);
  };
  const lostWithTopic = new Set(
    [...committed.keys()].filter((id) => {
      const row = storedById.get(id);
      if (row?.status === 'stuck' || inCurrent.has(id) || applied(id)) return false;
      return seen.has(id) || publishedJustBeforeDeletion(row);
    }),
  );
  const lost = [
    ...new Set([...[...committed.keys()].filter((id) => !seen.has(id) && !applied(id) && storedById.get(id)?.status !== 'stuck' && !lostWithTopic.has(id)), ...misrecorded]),
  ];

  // Per-key order of the ordered events: first copies, in the topic's order (life, partition, offset).
  const violations: string[] = [];
  const lastSequence = new Map<string, number>();
  const first = new Set<string>();
  for (const m of [...messages].sort((a, b) => a.incarnation - b.incarnation || a.partition - b.partition || a.offset - b.offset)) {
    const row = storedById.get(m.id);
    if (first.has(m.id) || row?.sequence === null || row?.sequence === undefined) continue;
    first.add(m.id);
    const sequence = Number(row.sequence);
    if (sequence < (lastSequence.get(m.key) ?? -1)) violations.push(`order violation on key ${m.key}: sequence ${sequence} after ${lastSequence.get(m.key)}`);
    lastSequence.set(m.key, Math.max(sequence, lastSequence.get(m.key) ?? -1));
  }

  const inboxIds = [...new Set([...seen, ...effects.keys()])].filter((id) => !lostWithTopic.has(id));
  const stall = longestStall(stored);
  const unresolved = stored.filter((r) => !(r.status === 'published' || (r.status === 'stuck' && r.lastError)));
  return {
    counts: {
      committed: committed.size,
      aborted: input.aborted.size,
      published: stored.filter((r) => r.status === 'published').length,
      stuck: stuck.length,
      messages: messages.length,
      duplicates: messages.length - seen.size,
      lost: lost.length,
      lostWithTopic: lostWithTopic.size,
      invented: [...seen].filter((id) => !committed.has(id)).length,
      abortedLeaked: [...input.aborted].filter((id) => storedById.has(id) || seen.has(id)).length,
      missingInStore: [...input.toldCommitted].filter((id) => !storedById.has(id)).length,
      orderViolations: violations.length,
      unresolved: unresolved.length,
      inboxApplied: inboxIds.filter((id) => effects.get(id) === 1).length,
      inboxWrong: inboxIds.filter((id) => effects.get(id) !== 1).length,
      longestStallMs: stall.ms,
    },
    longestStallKey: stall.key,
    longestStallFrom: stall.from,
    lostIds: lost,
    unresolvedIds: unresolved.map((r) => `${r.id}=${r.status}`),
    violations,
  };
}

/**
 * The longest wait of an ordered event between the moment it could go (written, and the event before
 * it in its key published) and its publication, over every key: how long a key stood still.
 */
export function longestStall(stored: readonly AuditRow[]): { ms: number; key: string | null; from: number | null } {
  const byKey = new Map<string, AuditRow[]>();
  for (const row of stored) {
    if (row.sequence === null || row.status !== 'published' || row.publishedAt === null) continue;
    byKey.set(row.aggregateId, [...(byKey.get(row.aggregateId) ?? []), row]);
  }
  let longest = { ms: 0, key: null as string | null, from: null as number | null };
  for (const [key, rows] of byKey) {
    let previous = -Infinity;
    for (const row of rows.sort((a, b) => Number(a.sequence) - Number(b.sequence))) {
      const publishedAt = (row.publishedAt as Date).getTime();
      const ready = Math.max(eventIdTime(row.id), previous);
      if (publishedAt - ready > longest.ms) longest = { ms: publishedAt - ready, key, from: ready };
      previous = Math.max(previous, publishedAt);
    }
  }
  return longest;
}
