/**
 * Partitions of the outbox (issue 17): the count fixed at set-up, the relays' membership heartbeats,
 * their partition leases, and each partition's lease and backlog for the CLI.
 */
import type { PartitionStatus } from '../../outbox';
import { storeNotSetUp, type PgStoreContext } from './context';

/**
 * The partition count, read once; null while the outbox was not set up since partitions came
 * (issue 17): its writers then keep writing, their events in partition 0, until `txoutbox migrate`.
 */
export async function partitionCountIfSetUp(t: PgStoreContext): Promise<number | null> {
  if (t.partitionCountRead !== undefined) return t.partitionCountRead;
  const { rows } = await t.pool.query<{ count: number | null }>(`select (select count from ${t.partitionsTable}) as count`).catch((err: unknown) => {
    if ((err as { code?: unknown }).code === '42P01') return { rows: [{ count: null }] };
    throw err;
  });
  const count = rows[0]?.count ?? null;
  if (count !== null) t.partitionCountRead = count;
  return count;
}

export async function partitionCount(t: PgStoreContext): Promise<number> {
  const count = await partitionCountIfSetUp(t);
  if (count === null) throw storeNotSetUp('postgres store: no partition count', t.schema);
  return count;
}

export async function heartbeat(t: PgStoreContext, group: string, member: string, ttlMs: number): Promise<string[]> {
  // Members gone for an hour are forgotten (a crashed relay never leaves).
  const { rows } = await t.pool.query<{ member: string }>(
    `with beat as (
       insert into ${t.relays} (grp, member, expires_at) values ($1, $2, now() + $3 * interval '1 millisecond')
       on conflict (grp, member) do update set expires_at = excluded.expires_at),
     gone as (delete from ${t.relays} where grp = $1 and expires_at < now() - interval '1 hour')
     select member from ${t.relays} where grp = $1 and expires_at > now() and member <> $2
     union select $2 order by 1`,
    [group, member, ttlMs],
  );
  return rows.map((r) => r.member);
}

export async function acquire(t: PgStoreContext, group: string, member: string, partitions: readonly number[], ttlMs: number): Promise<number[]> {
  if (partitions.length === 0) return [];
  await t.pool.query(`insert into ${t.leases} (grp, partition) select $1, p from unnest($2::int[]) as p on conflict do nothing`, [group, partitions]);
  const { rows } = await t.pool.query<{ partition: number }>(
    `update ${t.leases} set owner = $2, expires_at = now() + $4 * interval '1 millisecond'
      where grp = $1 and partition = any($3::int[]) and (owner = $2 or owner is null or expires_at <= now())
      returning partition`,
    [group, member, partitions, ttlMs],
  );
  return rows.map((r) => r.partition).sort((a, b) => a - b);
}

export async function releaseLeases(t: PgStoreContext, group: string, member: string, partitions: readonly number[], leave = false): Promise<void> {
  await t.pool.query(`update ${t.leases} set owner = null, expires_at = null where grp = $1 and owner = $2 and partition = any($3::int[])`, [group, member, partitions]);
  if (leave) await t.pool.query(`delete from ${t.relays} where grp = $1 and member = $2`, [group, member]);
}

export async function partitionStatus(t: PgStoreContext, group: string): Promise<PartitionStatus[]> {
  const count = await partitionCount(t);
  const [leases, pending] = await Promise.all([
    t.pool.query<{ partition: number; owner: string | null; expires_at: Date | null }>(`select partition, owner, expires_at from ${t.leases} where grp = $1`, [group]),
    t.pool.query<{ partition: number; n: number; oldest_id: string; oldest_at: Date }>(
      `select coalesce(partition, 0) as partition, count(*)::int as n, min(id::text) as oldest_id, min(occurred_at) as oldest_at
         from ${t.events} where status = 'pending' group by 1`,
    ),
  ]);
  return Array.from({ length: count }, (_, p) => {
    const lease = leases.rows.find((l) => l.partition === p);
    const backlog = pending.rows.find((r) => r.partition === p);
    return {
      partition: p,
      owner: lease?.owner ?? null,
      expiresAt: lease?.expires_at ?? null,
      pending: backlog?.n ?? 0,
      oldestPending: backlog === undefined ? null : { id: backlog.oldest_id, occurredAt: backlog.oldest_at },
    };
  });
}
