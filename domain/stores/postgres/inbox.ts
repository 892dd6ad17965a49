import type { Pool } from 'pg';
import { OutboxError, OutboxErrorCode } from '../../outbox';
import type { InboxOutcome, InboxStore } from '../../inbox/inbox';
import { withPgTransaction, type PgTx } from './connection';

/** The PostgreSQL inbox: `<schema>.inbox (consumer, event_id)` with a primary key on both. */
export class PostgresInbox implements InboxStore<PgTx> {
  private readonly table: string;

  constructor(
    private readonly pool: Pool,
    private readonly schema = 'public',
  ) {
    if (!/^[a-z_][a-z0-9_]{0,40}$/.test(schema)) {
      throw new OutboxError(OutboxErrorCode.invalidConfig, `postgres inbox: schema name ${JSON.stringify(schema)} is not a lower-case identifier`);
    }
    this.table = `"${schema}".inbox`;
  }

  async setup(): Promise<void> {
    await this.pool.query(`create schema if not exists "${this.schema}"`);
    await this.pool.query(`create table if not exists ${this.table} (
      consumer text not null,
      event_id text not null,
      applied_at timestamptz not null default now(),
      primary key (consumer, event_id)
    )`);
  }

  applyOnce(consumer: string, eventId: string, apply: (tx: PgTx) => Promise<void>): Promise<InboxOutcome> {
    return withPgTransaction(this.pool, async (tx) => {
      // A concurrent insert of the same key waits here until the other transaction ends.
      const inserted = await tx.client.query(`insert into ${this.table} (consumer, event_id) values ($1, $2) on conflict do nothing`, [consumer, eventId]);
      if (inserted.rowCount !== 1) return 'duplicate';
      await apply(tx);
      return 'applied';
    });
  }

  async close(): Promise<void> {
    // The caller owns the pool.
  }
}
