import type { ClientSession, Db, MongoClient } from 'mongodb';
import type { InboxOutcome, InboxStore } from '../../inbox/inbox';
import type { MongoTx } from './context';

interface InboxDocument {
  _id: string;
  consumer: string;
  eventId: string;
  appliedAt: Date;
}

/**
 * The MongoDB inbox: one document per (consumer, event id), `_id` = `consumer:eventId`, inserted in
 * the consumer's transaction (`session.withTransaction`). A concurrent insert of the same id is a
 * write conflict the driver retries; the retry then finds the document and skips.
 */
export class MongoInbox implements InboxStore<MongoTx> {
  constructor(
    private readonly client: MongoClient,
    private readonly db: Db,
    private readonly collectionName = 'inbox',
  ) {}

  async setup(): Promise<void> {
    await this.db.createCollection(this.collectionName).catch(() => undefined);
  }

  async applyOnce(consumer: string, eventId: string, apply: (tx: MongoTx) => Promise<void>): Promise<InboxOutcome> {
    const inbox = this.db.collection<InboxDocument>(this.collectionName);
    const session: ClientSession = this.client.startSession();
    try {
      return await session.withTransaction(async () => {
        const _id = `${consumer}:${eventId}`;
        if ((await inbox.findOne({ _id }, { session })) !== null) return 'duplicate';
        await inbox.insertOne({ _id, consumer, eventId, appliedAt: new Date() }, { session });
        await apply({ session });
        return 'applied';
      });
    } finally {
      await session.endSession();
    }
  }

  async close(): Promise<void> {
    // The caller owns the client.
  }
}
