/**
 * `txoutbox/inbox`: a kafkajs consumer that applies each event's effects exactly once, through an
 * inbox (`MongoInbox` from `txoutbox/mongodb`, `PostgresInbox` from `txoutbox/postgres`). Needs `kafkajs`.
 */
export { createInboxConsumer, InboxConsumer, type InboxConsumerEvents, type InboxConsumerOptions, type InboxEvent, type RunningInboxConsumer } from '../inbox/consumer';
