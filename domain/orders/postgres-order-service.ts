import type { Pool } from 'pg';
import type { Outbox, OutboxEvent } from '../outbox';
import { withPgTransaction, type PgTx } from '../stores/postgres';
import { decide, NO_ORDER, type OrderCommand, type OrderState } from './order';
import type { OrderService } from './order-service';

/**
 * The demo service on PostgreSQL: each command is one transaction that changes the `orders` row
 * and adds its events to the outbox. It never talks to Kafka or Temporal.
 */
export class PostgresOrderService implements OrderService {
  private readonly table: string;

  constructor(
    private readonly pool: Pool,
    private readonly outbox: Outbox<PgTx>,
    schema: string,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.table = `"${schema}".orders`;
  }

  async setup(): Promise<void> {
    await this.pool.query(`create table if not exists ${this.table} (
      id text primary key,
      customer_id text not null,
      status text not null,
      total_cents bigint not null,
      updated_at timestamptz not null default now()
    )`);
  }

  async handle(command: OrderCommand, afterWrite?: (added: OutboxEvent[]) => Promise<void>): Promise<OutboxEvent[]> {
    return withPgTransaction(this.pool, async (tx) => {
      const { client } = tx;
      const state = await this.load(client, command.orderId);
      const events = decide(command, state, this.now);
      const added: OutboxEvent[] = [];
      for (const event of events) {
        const { type, ...payload } = event;
        if (type === 'orders.OrderPlaced') {
          await client.query(`insert into ${this.table} (id, customer_id, status, total_cents) values ($1, $2, 'placed', $3)`, [
            event.orderId,
            event.customerId,
            event.totalCents,
          ]);
        } else {
          await client.query(`update ${this.table} set status = 'cancelled', updated_at = now() where id = $1`, [event.orderId]);
        }
        added.push(await this.outbox.add({ type, aggregateId: event.orderId, payload }, tx));
      }
      if (afterWrite) await afterWrite(added);
      return added;
    });
  }

  private async load(client: PgTx['client'], orderId: string): Promise<OrderState> {
    const { rows } = await client.query<{ status: 'placed' | 'cancelled'; customer_id: string; total_cents: string }>(
      `select status, customer_id, total_cents from ${this.table} where id = $1 for update`,
      [orderId],
    );
    const row = rows[0];
    if (!row) return NO_ORDER;
    return { status: row.status, orderId, customerId: row.customer_id, totalCents: Number(row.total_cents) };
  }
}
