/**
 * Ownership of events between the fast path and workflows: claims under a lease and a token, their
 * release, and the fast path's batch of marks under its token.
 */
import type { EventOwner, MarkManyResult, PublishResult, WorkflowClaim } from '../../outbox';
import { positionTakenOr, toEvent, type EventRow, type PgStoreContext } from './context';

/**
 * A workflow's claim: what it sets, and the events it may take (pending or stuck, not under a live
 * fast lease). One text for `claim` and `claimForWorkflow`.
 */
const WORKFLOW_CLAIM_SET = `owner = 'workflow', claimed_until = null, claim_token = null`;
const WORKFLOW_CLAIMABLE = `status in ('pending', 'stuck') and (owner is null or owner = 'workflow' or claimed_until < now())`;

export async function claim(t: PgStoreContext, eventIds: readonly string[], owner: EventOwner, leaseMs = 60_000, token?: string): Promise<string[]> {
  if (eventIds.length === 0) return [];
  const { rows } =
    owner === 'fast'
      ? await t.pool.query<{ id: string }>(
          `update ${t.events} set owner = 'fast', claimed_until = now() + $2 * interval '1 millisecond', claim_token = coalesce($3::uuid, gen_random_uuid())
            where id = any($1::uuid[]) and status = 'pending' and (owner is null or (owner = 'fast' and claimed_until < now()))
            returning id`,
          [eventIds, leaseMs, token ?? null],
        )
      : await t.pool.query<{ id: string }>(
          `update ${t.events} set ${WORKFLOW_CLAIM_SET} where id = any($1::uuid[]) and ${WORKFLOW_CLAIMABLE} returning id`,
          [eventIds],
        );
  return rows.map((r) => r.id);
}

export async function claimForWorkflow(t: PgStoreContext, eventId: string): Promise<WorkflowClaim> {
  // One statement: the claim (claim()'s for a workflow), and the row as it is when not claimed.
  const { rows } = await t.pool.query<EventRow & { claimed: boolean }>(
    `with claimed as (
       update ${t.events} set ${WORKFLOW_CLAIM_SET} where id = $1 and ${WORKFLOW_CLAIMABLE} returning *)
     select true as claimed, c.* from claimed c
     union all
     select false as claimed, e.* from ${t.events} e where e.id = $1 and not exists (select 1 from claimed)`,
    [eventId],
  );
  const row = rows[0];
  return { claimed: row?.claimed === true, event: row ? toEvent(row) : null };
}

export async function release(t: PgStoreContext, eventIds: readonly string[], token: string): Promise<void> {
  if (eventIds.length === 0) return;
  await t.pool.query(
    `update ${t.events} set owner = null, claimed_until = null, claim_token = null
      where id = any($1::uuid[]) and owner = 'fast' and status = 'pending' and claim_token = $2`,
    [eventIds, token],
  );
}

/**
 * The fast path's batch of marks: the statement and its parameters (`$1`–`$6` the receipts, `$7` the
 * claim token). It leaves out an event whose Kafka position another event holds.
 *
 * Each receipt finds its event by primary key, in a subquery `offset 0` keeps the planner from
 * flattening. Joined directly, the claim's conditions (a token no statistics know) made the planner
 * expect one row of the table: on a table of a few thousand pending rows it scanned the table and
 * rescanned the receipts for each row (500 × 500 rows per batch of 500, 60–140 ms a mark). The
 * conditions stay on `e` too: a row another statement changed meanwhile is checked again as it is
 * now (READ COMMITTED re-evaluates the updated row's own conditions, not the subquery's).
 */
export function markManyStatement(t: PgStoreContext, results: readonly PublishResult[], token: string): { text: string; values: unknown[]; receipts: string } {
  const receipts = `unnest($1::uuid[], $2::timestamptz[], $3::int[], $4::bigint[], $5::int[], $6::text[]) as v(id, published_at, kafka_partition, kafka_offset, attempts, topic)`;
  const taken = positionTakenBy(t);
  return {
    receipts,
    values: [results.map((r) => r.eventId), results.map((r) => r.publishedAt), results.map((r) => r.partition), results.map((r) => r.offset), results.map((r) => r.attempts), results.map((r) => r.topic), token],
    text: `update ${t.events} as e
          set status = 'published', published_at = v.published_at, kafka_partition = v.kafka_partition, kafka_offset = v.kafka_offset,
              attempts = v.attempts, last_error = null
         from ${receipts}
        cross join lateral (
          select o.id from ${t.events} o
           where o.id = v.id and o.status in ('pending', 'stuck') and o.owner = 'fast' and o.claim_token = $7
          offset 0) as owned
        where e.id = owned.id and e.status in ('pending', 'stuck') and e.owner = 'fast' and e.claim_token = $7 and not ${taken}
        returning e.id`,
  };
}

/** Whether another event holds receipt `v`'s Kafka position. */
function positionTakenBy(t: PgStoreContext): string {
  return `exists (select 1 from ${t.events} o where o.topic = v.topic and o.kafka_partition = v.kafka_partition and o.kafka_offset = v.kafka_offset and o.id <> v.id)`;
}

export async function markPublishedMany(t: PgStoreContext, results: readonly PublishResult[], token: string): Promise<MarkManyResult> {
  if (results.length === 0) return { marked: 0, positionTaken: [] };
  const statement = markManyStatement(t, results, token);
  // One statement; a position taken by a concurrent statement meanwhile fails it on the unique
  // index, and it runs once more.
  const mark = (): Promise<{ rows: Array<{ id: string }> }> => t.pool.query<{ id: string }>(statement.text, statement.values);
  const marked = await mark().catch((err: unknown) => {
    if (positionTakenOr(err, results) === err) throw err;
    return mark();
  }).catch((err: unknown) => {
    throw positionTakenOr(err, results);
  });
  const markedIds = new Set(marked.rows.map((r) => r.id));
  if (markedIds.size === results.length) return { marked: markedIds.size, positionTaken: [] };
  const { rows } = await t.pool.query<{ id: string }>(`select v.id from ${statement.receipts} where ${positionTakenBy(t)}`, statement.values.slice(0, 6));
  const takenIds = new Set(rows.map((r) => r.id));
  return { marked: markedIds.size, positionTaken: results.filter((r) => !markedIds.has(r.eventId) && takenIds.has(r.eventId)) };
}
