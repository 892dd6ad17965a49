import { OperationsStore, type StoreOperations } from '../operations-store';
import * as admin from './admin';
import * as claims from './claims';
import { mongoStoreContext, type MongoStoreContext, type MongoStoreOptions, type MongoTx } from './context';
import * as events from './events';
import * as feed from './feed';
import * as partitions from './partitions';
import * as schema from './schema';

const MONGODB_OPERATIONS: StoreOperations<MongoStoreContext, MongoTx> = {
  // Each concern's module: its operations, by name.
  ...schema, ...events, ...claims, ...feed, ...partitions, ...admin,
  // The caller owns the MongoClient.
  close: async () => undefined,
};

/**
 * The MongoDB adapter (the product's target). Writes go into the caller's transaction
 * (`session.withTransaction`); the feed is a change stream on inserts, opened with `startAfter`
 * from the saved resume token. The token is saved by `checkpoint()`, which the relay calls only
 * after Temporal accepted the starts; empty batches save the driver's post-batch resume token too,
 * so a quiet outbox never lets its token fall off the oplog. Each concern is a module of this folder.
 */
export class MongoOutboxStore extends OperationsStore<MongoStoreContext, MongoTx> {
  constructor(options: MongoStoreOptions) {
    super('mongodb', mongoStoreContext(options), MONGODB_OPERATIONS);
  }
}
