/**
 * `txoutbox/mongodb`: the MongoDB adapter (outbox store and consumer inbox). Needs the `mongodb`
 * driver (a peer dependency) and a replica set: transactions and change streams need one.
 * The store's parts live beside it: schema, events, claims, feed, partitions, admin.
 */
export type { MongoStoreOptions, MongoTx, OutboxDocument } from './context';
export { MongoInbox } from './inbox';
export { MongoOutboxStore } from './store';
