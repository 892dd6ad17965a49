/**
 * The consumer side: at-least-once delivery is the honest guarantee at the Kafka boundary, so a
 * consumer records each event id in an inbox in the same transaction as its own effects. A
 * redelivered event finds its id there and is skipped: its effects happen exactly once.
 */

/** What an inbox adapter does: run the effects of one event at most once per consumer. */
export interface InboxStore<Tx> {
  /** Creates the inbox table/collection when missing. Idempotent. */
  setup(): Promise<void>;
  /**
   * In one transaction: record (consumer, eventId); if it was not there yet, run `apply` with the
   * transaction and commit both; if it was, change nothing. Concurrent calls for the same event wait
   * on each other, so exactly one applies.
   */
  applyOnce(consumer: string, eventId: string, apply: (tx: Tx) => Promise<void>): Promise<InboxOutcome>;
  close(): Promise<void>;
}

export type InboxOutcome = 'applied' | 'duplicate';
