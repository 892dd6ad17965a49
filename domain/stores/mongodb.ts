/**
 * `txoutbox/mongodb`: the MongoDB adapter (outbox store and consumer inbox). Needs the `mongodb`
 * driver (a peer dependency) and a replica set: transactions and change streams need one.
 */
export { MongoOutboxStore, type MongoStoreOptions, type MongoTx, type OutboxDocument } from './mongodb-store';
export { MongoInbox } from './mongodb-inbox';
