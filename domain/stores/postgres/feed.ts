/**
 * The change feed: a durable cursor over `(txid, id)` woken by LISTEN/NOTIFY when it waits (see
 * feed-wait.ts), its checkpoints (one per feed, or one per partition under a lease), and the fast
 * path's claim in the same statement.
 */
import type { PoolClient } from 'pg';
import { leaseLostError, OutboxError, OutboxErrorCode, partitionCheckpointName, type FeedBatch, type FeedGap, type FeedOptions } from '../../outbox';
import { comparePositions, NIL_UUID, partitionFilter, toEvent, type EventRow, type PgStoreContext, type Position } from './context';
import { stopWaiting, tryToWait, WritingPoll } from './feed-wait';

/** Deletes the feed's saved position (operators' "reset"; also what the tests use to lose it). */
export async function deleteCheckpoint(t: PgStoreContext, name: string): Promise<void> {
  await t.pool.query(`delete from ${t.checkpoints} where name = $1`, [name]);
}

export async function* feedBatches(t: PgStoreContext, options: FeedOptions, signal: AbortSignal, gap: (reason: FeedGap) => void): AsyncGenerator<FeedBatch> {
  const listener: PoolClient = await t.pool.connect();
  let woken = true;
  let wake: (() => void) | undefined;
  const onNotify = (): void => {
    woken = true;
    wake?.();
  };
  const onAbort = (): void => wake?.();
  // The LISTEN connection can break while it waits (a database restart): the feed then fails and
  // the relay reopens it from the checkpoint, instead of an unhandled 'error' ending the process.
  let broken: Error | undefined;
  const onError = (err: Error): void => {
    broken = err;
    wake?.();
  };
  /** Sleeps `ms`, or less: a notification (one came since the last read: none), the feed stopping or its connection breaking. */
  const sleep = async (ms: number): Promise<void> => {
    if (woken || signal.aborted || broken) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    wake = undefined;
  };
  listener.on('error', onError);
  listener.on('notification', onNotify);
  signal.addEventListener('abort', onAbort);
  try {
    await listener.query(`listen ${t.channel}`);
    let position = await feedStart(t, options, gap);
    // The position last saved (by reference): a batch saves its `next` unless that is it, so the
    // relay may save only the last of several batches, an empty one included.
    const saves = { persisted: position };
    const poll = new WritingPoll();
    // An empty read yields a batch only once per maxWaitMs (the first read always does: positioned).
    let yieldedAt = 0;
    while (!signal.aborted) {
      if (broken) throw broken;
      woken = false;
      const claimedAt = Date.now();
      const rows = await readFeed(t, position, options);
      const last = rows[rows.length - 1];
      const next: Position = last ? { txid: last.txid, id: last.id } : position;
      if (rows.length > 0 || claimedAt - yieldedAt >= options.maxWaitMs) {
        yieldedAt = claimedAt;
        yield feedBatch(t, options, rows, { saves, next, claimedAt });
      }
      position = next;
      if (rows.length > 0) poll.found();
      // A read that found events is followed by another at once: the consumer asks for it after it
      // has dispatched these, and what was written meanwhile is there to read. Only a read that
      // found nothing waits, without a round trip to begin waiting and a sleep between two batches.
      if (rows.length > 0 || woken || signal.aborted) continue;
      // Nothing more to read now: wait for writes (see feed-wait.ts).
      const state = await tryToWait(t, listener);
      if (state === 'writing') await sleep(poll.sleepMs());
      else if (state === 'notified') await sleep(options.maxWaitMs);
      else {
        // A writer may have committed between the read and the lock, without a notification.
        if ((await readFeed(t, position, { ...options, claim: undefined, batchSize: 1 })).length === 0) await sleep(options.maxWaitMs);
        if (!broken) await stopWaiting(t, listener);
      }
    }
  } catch (err) {
    // A query that failed (a timeout on a connection that stopped answering) leaves the LISTEN
    // connection unusable too: it is destroyed, not pooled.
    broken ??= err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
    listener.off('notification', onNotify);
    if (broken) {
      listener.release(broken); // destroys the broken connection instead of pooling it (its locks with it)
    } else {
      await listener.query(`unlisten ${t.channel}`).catch(() => undefined);
      listener.off('error', onError);
      listener.release();
    }
  }
}

/** A batch of the feed: its events, the checkpoint that saves `next`, and what the same statement claimed. */
function feedBatch(
  t: PgStoreContext,
  options: FeedOptions,
  rows: ReadonlyArray<EventRow & { fast_claimed?: boolean }>,
  { saves, next, claimedAt }: { saves: { persisted: Position }; next: Position; claimedAt: number },
): FeedBatch {
  return {
    events: rows.map(toEvent),
    checkpoint: async () => {
      if (options.partitions !== undefined) await savePartitionCheckpoints(t, options.name, options.partitions, next);
      else if (next !== saves.persisted) await saveCheckpoint(t, options.name, next);
      saves.persisted = next;
    },
    ...(options.claim === undefined ? {} : { claimed: { ids: new Set(rows.filter((r) => r.fast_claimed === true).map((r) => r.id)), at: claimedAt, token: options.claim.token } }),
  };
}

/**
 * Where the feed starts: its saved position (or its partitions' oldest); from now, reporting the
 * gap, when there is none or the one saved is unusable.
 */
async function feedStart(t: PgStoreContext, options: FeedOptions, gap: (reason: FeedGap) => void): Promise<Position> {
  const position = options.partitions === undefined ? await loadCheckpoint(t, options.name) : await loadPartitionsStart(t, options.name, options.partitions.ids, gap);
  if (position === null) {
    const now = await currentPosition(t);
    t.logger.info('change feed has no checkpoint: starting from now, the sweeper finds older pending events', {
      feed: options.name,
    });
    gap('no-checkpoint');
    return now;
  }
  if (!(await isFromTheFuture(t, position))) return position;
  // A position no transaction has reached yet (a restored backup, a hand-edited row): kept, it
  // would hide every new event until the counter caught up, and as positions only move forward
  // it would never be replaced. Dropped instead; the sweeper delivers what the feed skips.
  const problem = new OutboxError(
    OutboxErrorCode.checkpointCorrupt,
    `change feed checkpoint ${JSON.stringify(options.name)} is ahead of the database (txid ${position.txid}): discarded, starting from now`,
    { context: { feed: options.name, txid: position.txid } },
  );
  t.logger.error(problem.message, { error: problem });
  if (options.partitions === undefined) await deleteCheckpoint(t, options.name);
  else await t.pool.query(`delete from ${t.checkpoints} where name = any($1::text[])`, [options.partitions.ids.map((p) => partitionCheckpointName(options.name, p))]);
  const now = await currentPosition(t);
  gap('checkpoint-unusable');
  return now;
}

/**
 * The feed's next rows after `position`. With `options.claim`, the same statement claims the
 * eligible ones for the fast path (what `claim(ids, 'fast')` does), so reading and claiming are
 * one round trip; `fast_claimed` says which it claimed. The claim looks the rows up by primary key
 * (`= any(array(...))`): joined to the batch instead, the planner was seen to pick a plan that
 * took 100+ ms per batch once the table's statistics changed mid-drain.
 */
export async function readFeed(t: PgStoreContext, position: Position, options: FeedOptions): Promise<Array<EventRow & { fast_claimed?: boolean }>> {
  const partitions = options.partitions?.ids ?? null;
  const next = `select * from ${t.events}
      where txid < pg_snapshot_xmin(pg_current_snapshot())
        and (txid, id) > ($1::xid8, $2::uuid) and ${partitionFilter(options.claim === undefined ? '$4' : '$7')}
      order by txid, id
      limit $3`;
  if (options.claim === undefined) {
    return (await t.pool.query<EventRow>(next, [position.txid, position.id, options.batchSize, partitions])).rows;
  }
  const { topics, types, leaseMs, token } = options.claim;
  const { rows } = await t.pool.query<EventRow & { fast_claimed: boolean }>(
    `with batch as (${next}),
     claimed as (
       update ${t.events} as e set owner = 'fast', claimed_until = now() + $4 * interval '1 millisecond', claim_token = $8::uuid
        where e.id = any(array(select id from batch)) and (e.topic = any($5::text[]) or e.type = any($6::text[]))
          and e.status = 'pending' and (e.owner is null or (e.owner = 'fast' and e.claimed_until < now()))
        returning e.id)
     select batch.*, claimed.id is not null as fast_claimed
       from batch left join claimed on claimed.id = batch.id
      order by batch.txid, batch.id`,
    [position.txid, position.id, options.batchSize, leaseMs, [...topics], [...types], partitions, token],
  );
  return rows;
}

/**
 * Where a partitioned feed starts: the oldest of its partitions' saved positions, so no partition
 * misses an event (the others read a few again: their starts are refused as duplicates, their fast
 * claims fail). A partition never saved takes the group's unpartitioned position, where a relay
 * that read every partition left off; with neither, the feed starts from now and reports the gap.
 */
export async function loadPartitionsStart(t: PgStoreContext, name: string, partitions: readonly number[], gap: (reason: FeedGap) => void): Promise<Position | null> {
  const names = partitions.map((p) => partitionCheckpointName(name, p));
  const { rows } = await t.pool.query<Position & { name: string }>(
    `select name, txid::text as txid, id::text as id from ${t.checkpoints} where name = any($1::text[]) or name = $2`,
    [names, name],
  );
  const group = rows.find((r) => r.name === name);
  const starts = names.map((n) => rows.find((r) => r.name === n) ?? group).filter((p): p is Position & { name: string } => p !== undefined);
  if (starts.length === 0) return null;
  // A partition with no position: its events before now are the sweeper's.
  if (starts.length < names.length) gap('no-checkpoint');
  return starts.reduce((a, b) => (comparePositions(a, b) <= 0 ? a : b));
}

/**
 * Saves `position` for each partition the member still holds, forward only; throws LEASE_LOST,
 * saving nothing, when it holds one of them no longer (its new owner's position is the one that counts).
 */
export async function savePartitionCheckpoints(t: PgStoreContext, name: string, partitions: { ids: readonly number[]; member: string }, position: Position): Promise<void> {
  const { rows } = await t.pool.query<{ held: number[] }>(
    `with held as (
       select p, n from unnest($3::int[], $6::text[]) as h(p, n)
        where exists (select 1 from ${t.leases} l where l.grp = $1 and l.partition = p and l.owner = $2 and l.expires_at > now())),
     saved as (
       insert into ${t.checkpoints} as c (name, txid, id, updated_at)
       select n, $4::xid8, $5::uuid, now() from held
        where (select count(*) from held) = cardinality($3::int[])
       on conflict (name) do update set txid = excluded.txid, id = excluded.id, updated_at = now()
        where (c.txid, c.id) < (excluded.txid, excluded.id))
     select coalesce(array_agg(p), '{}') as held from held`,
    [name, partitions.member, partitions.ids, position.txid, position.id, partitions.ids.map((p) => partitionCheckpointName(name, p))],
  );
  const held = new Set(rows[0]?.held ?? []);
  const lost = partitions.ids.filter((p) => !held.has(p));
  if (lost.length > 0) throw leaseLostError(name, partitions.member, lost);
}

export async function loadCheckpoint(t: PgStoreContext, name: string): Promise<Position | null> {
  const { rows } = await t.pool.query<Position>(`select txid::text as txid, id::text as id from ${t.checkpoints} where name = $1`, [name]);
  return rows[0] ?? null;
}

/** "Now": every row of a transaction older than the oldest one still running is behind it. */
export async function isFromTheFuture(t: PgStoreContext, position: Position): Promise<boolean> {
  const { rows } = await t.pool.query<{ ahead: boolean }>(`select $1::xid8 >= pg_snapshot_xmax(pg_current_snapshot()) as ahead`, [position.txid]);
  return rows[0]?.ahead === true;
}

export async function currentPosition(t: PgStoreContext): Promise<Position> {
  const { rows } = await t.pool.query<{ txid: string }>(`select pg_snapshot_xmin(pg_current_snapshot())::text as txid`);
  return { txid: rows[0]?.txid ?? '0', id: NIL_UUID };
}

export async function saveCheckpoint(t: PgStoreContext, name: string, position: Position): Promise<void> {
  // Only forward: two relays sharing a name never move the position back.
  await t.pool.query(
    `insert into ${t.checkpoints} as c (name, txid, id, updated_at) values ($1, $2::xid8, $3::uuid, now())
     on conflict (name) do update set txid = excluded.txid, id = excluded.id, updated_at = now()
      where (c.txid, c.id) < (excluded.txid, excluded.id)`,
    [name, position.txid, position.id],
  );
}
