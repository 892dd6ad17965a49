// domain/orders/: the demo service, orders placed and cancelled (decide/evolve in order.ts), writing
// its business change and the event that announces it in one transaction, on MongoDB and on PostgreSQL.
import type { ClientSession, Db, MongoClient } from 'mongodb';
import type { Outbox, OutboxEvent } from '../outbox';
import type { MongoTx } from '../stores/mongodb';
import { decide, NO_ORDER, type OrderCommand, type OrderState } from './order';
import type { OrderService } from './order-service';

interface OrderDocument {
  _id: string;
  customerId: string;
  status: 'placed' | 'cancelled';
  totalCents: number;
  updatedAt: Date;
}

/**
 * The demo service on MongoDB: each command is one multi-document transaction
 * (`session.withTransaction`) that changes the order document and adds its events to the outbox in
 * the same session. It never talks to Kafka or Temporal.
 */
export class MongoOrderService implements OrderService {
  constructor(
    private readonly client: MongoClient,
    private readonly db: Db,
    private readonly outbox: Outbox<MongoTx>,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private get orders() {
    return this.db.collection<OrderDocument>('orders');
  }

  async setup(): Promise<void> {
    // Created up front: a transaction is no place to create a collection (mongod before 4.4 refuses).
    await this.db.createCollection('orders').catch((err: unknown) => {
      if ((err as { codeName?: unknown }).codeName !== 'NamespaceExists') throw err;
    });
  }

  async handle(command: OrderCommand, afterWrite?: (added: OutboxEvent[]) => Promise<void>): Promise<OutboxEvent[]> {
    const session = this.client.startSession();
    try {
      return await session.withTransaction(async () => {
        const state = await this.load(session, command.orderId);
        const events = decide(command, state, this.now);
        const added: OutboxEvent[] = [];
        for (const event of events) {
          const { type, ...payload } = event;
          if (type === 'orders.OrderPlaced') {
            await this.orders.insertOne(
              { _id: event.orderId, customerId: event.customerId, status: 'placed', totalCents: event.totalCents, updatedAt: this.now() },
              { session },
            );
          } else {
            await this.orders.updateOne({ _id: event.orderId }, { $set: { status: 'cancelled', updatedAt: this.now() } }, { session });
          }
          added.push(await this.outbox.add({ type, aggregateId: event.orderId, payload }, { session }));
        }
        if (afterWrite) await afterWrite(added);
        return added;
      });
    } finally {
      await session.endSession();
    }
  }

  private async load(session: ClientSession, orderId: string): Promise<OrderState> {
    const doc = await this.orders.findOne({ _id: orderId }, { session });
    if (!doc) return NO_ORDER;
    return { status: doc.status, orderId, customerId: doc.customerId, totalCents: doc.totalCents };
  }
}
