/**
 * How the change feed waits for writes without making every writer NOTIFY.
 *
 * A NOTIFY makes its transaction's commit take a lock held across the database until the commit is
 * flushed, so notifying writers commit one after another (measured here: eight writers went from
 * about 4,500 commits/s to 2,000–3,000). So the insert trigger notifies only while a feed waits:
 * - a waiting feed holds the schema's wait lock (an advisory lock, on its LISTEN session) exclusively;
 * - the trigger tries to take it shared until its transaction ends: when it cannot, a feed waits,
 *   and it notifies; when it can, it does not, and holding it keeps any feed from beginning to wait
 *   until its event is committed.
 * A feed with nothing left to read takes the lock only when no writer holds it, then looks once more
 * (a writer may have committed between its read and the lock) and sleeps until a notification or
 * `maxWaitMs`. When writers hold the lock, they will not notify: the feed reads again shortly, the
 * longer the less it finds (`WRITING_POLL_MS`). When another feed holds it, writers notify, and every
 * listening feed wakes.
 */
import type { PoolClient } from 'pg';
import type { PgStoreContext } from './context';

/** A feed whose writers hold the wait lock reads again after this long, doubling while it finds nothing, up to the last. */
export const WRITING_POLL_MS: readonly [first: number, last: number] = [1, 100];

/** What the feed found when it tried to begin to wait. */
export type WaitState =
  /** It holds the wait lock: writers notify until it lets go. */
  | 'waiting'
  /** Writers hold the lock; they do not notify. */
  | 'writing'
  /** Another feed holds it: writers notify. */
  | 'notified';

/** The trigger's body: NOTIFY only when a feed holds the wait lock. */
export function notifyTriggerBody(t: PgStoreContext): string {
  return `
      begin
        -- A NOTIFY serialises commits: sent only while a feed waits (see feed-wait.ts).
        if not pg_try_advisory_xact_lock_shared(hashtext('${t.feedWaitLock}')) then
          perform pg_notify('${t.channel}', '');
        end if;
        return null;
      end`;
}

/** Tries to begin to wait, on the feed's LISTEN session (one round trip; `case` keeps the order of the tries). */
export async function tryToWait(t: PgStoreContext, listener: PoolClient): Promise<WaitState> {
  const { rows } = await listener.query<{ state: WaitState }>(
    `select case when pg_try_advisory_lock(hashtext($1)) then 'waiting'
                 when pg_try_advisory_lock_shared(hashtext($1)) then case when pg_advisory_unlock_shared(hashtext($1)) then 'writing' end
                 else 'notified' end as state`,
    [t.feedWaitLock],
  );
  return rows[0]?.state ?? 'notified';
}

/** Stops waiting: writers stop notifying (unless another feed waits). */
export async function stopWaiting(t: Pick<PgStoreContext, 'feedWaitLock'>, listener: Pick<PoolClient, 'query'>): Promise<void> {
  await listener.query('select pg_advisory_unlock(hashtext($1))', [t.feedWaitLock]);
}

/**
 * Holds the wait lock as a waiting feed does, waiting for writers to let go of it: every write
 * notifies until `stopWaiting`. What the benchmark measures writes under; a feed only tries it.
 */
export async function holdWaitLock(t: Pick<PgStoreContext, 'feedWaitLock'>, session: Pick<PoolClient, 'query'>): Promise<void> {
  await session.query('select pg_advisory_lock(hashtext($1))', [t.feedWaitLock]);
}

/** How long a feed whose writers hold the lock sleeps: doubling while it finds nothing, from the first again once it does. */
export class WritingPoll {
  private next = WRITING_POLL_MS[0];

  found(): void {
    this.next = WRITING_POLL_MS[0];
  }

  sleepMs(): number {
    const ms = this.next;
    this.next = Math.min(WRITING_POLL_MS[1], ms * 2);
    return ms;
  }
}
