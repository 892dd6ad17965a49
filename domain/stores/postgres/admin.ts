/**
 * Reads and maintenance across many events: the sweeper's pending events, the CLI's list and
 * stats, and purging what was published long ago.
 */
import { DEFAULT_PURGE_BATCH, type ListQuery, type OutboxEvent, type OutboxStats, type OutboxStatus as Status, type PurgeOptions, type StatsOptions } from '../../outbox';
import { publishedEstimate } from '../operations-store';
import { NIL_UUID, partitionFilter, toEvent, type EventRow, type PgStoreContext } from './context';

export async function findPending(t: PgStoreContext, query: { beforeId: string; afterId?: string; limit: number; partitions?: readonly number[] }): Promise<OutboxEvent[]> {
  const { rows } = await t.pool.query<EventRow>(
    `select * from ${t.events}
      where status = 'pending' and id < $1 and id > $2 and ${partitionFilter('$4')}
        and (owner is distinct from 'fast' or claimed_until <= now())
      order by id limit $3`,
    [query.beforeId, query.afterId ?? NIL_UUID, query.limit, query.partitions ?? null],
  );
  return rows.map(toEvent);
}

export async function list(t: PgStoreContext, query: ListQuery): Promise<OutboxEvent[]> {
  const { rows } = await t.pool.query<EventRow>(
    `select * from ${t.events}
      where ($1::text is null or status = $1) and ($2::text is null or type = $2)
        and id > $3 and ($4::uuid is null or id < $4)
      order by id limit $5`,
    [query.status ?? null, query.type ?? null, query.afterId ?? NIL_UUID, query.beforeId ?? null, query.limit],
  );
  return rows.map(toEvent);
}

export async function stats(t: PgStoreContext, options: StatsOptions = {}): Promise<OutboxStats> {
  const counts: OutboxStats['counts'] = { pending: 0, published: 0, stuck: 0, compensated: 0, discarded: 0 };
  const estimated = options.published === 'estimated';
  if (estimated) {
    // Pending and set-aside events from their partial indexes; the published ones as the table's
    // live rows in the statistics (kept as rows are written and deleted; after a crash, which
    // loses them, the last analyze's count) less those.
    const { rows } = await t.pool.query<{ status: Status | 'all'; n: string }>(
      `select 'pending' as status, count(*)::text as n from ${t.events} where status = 'pending'
       union all
       select status, count(*)::text from ${t.events} where status not in ('pending', 'published') group by status
       union all
       select 'all', coalesce(nullif(pg_stat_get_live_tuples(c.oid), 0), greatest(c.reltuples, 0)::bigint)::text
         from pg_class c where c.oid = $1::regclass`,
      [t.events],
    );
    let all = 0;
    for (const row of rows) {
      if (row.status === 'all') all = Number(row.n);
      else counts[row.status] = Number(row.n);
    }
    counts.published = publishedEstimate(counts, all);
  } else {
    const { rows } = await t.pool.query<{ status: Status; n: string }>(`select status, count(*)::text as n from ${t.events} group by status`);
    for (const row of rows) counts[row.status] = Number(row.n);
  }
  const oldest = await t.pool.query<{ id: string; occurred_at: Date }>(
    `select id, occurred_at from ${t.events} where status = 'pending' order by id limit 1`,
  );
  const first = oldest.rows[0];
  return { counts, oldestPending: first ? { id: first.id, occurredAt: first.occurred_at } : null, ...(estimated ? { publishedEstimated: true } : {}) };
}

export async function purgePublished(t: PgStoreContext, before: Date, options: PurgeOptions = {}): Promise<number> {
  const batchSize = options.batchSize ?? DEFAULT_PURGE_BATCH;
  let deleted = 0;
  for (;;) {
    const result = await t.pool.query(
      `delete from ${t.events} where id in (
         select id from ${t.events} where status = 'published' and published_at < $1 limit $2 for update skip locked)`,
      [before, batchSize],
    );
    deleted += result.rowCount ?? 0;
    if ((result.rowCount ?? 0) < batchSize) return deleted;
  }
}
