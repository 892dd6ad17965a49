/**
 * `txoutbox`: what a service needs to write events, with no database driver, Temporal SDK or Kafka
 * client: event types and their registry, `createOutbox`, the stored event and its CloudEvents
 * envelope, the typed errors, the logger and the store and inbox interfaces. The adapters are
 * `txoutbox/mongodb` and `txoutbox/postgres`.
 */
export * from './outbox';
export type { InboxOutcome, InboxStore } from './inbox/inbox';
