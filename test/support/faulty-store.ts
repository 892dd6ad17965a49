import type { ChangeFeed, FeedBatch, FeedOptions, OutboxStore } from '../../domain/outbox';

/**
 * Wraps a real store so that the relay "dies" between starting workflows and saving the feed
 * position: every batch with events fails at checkpoint(), as a process killed at that moment would.
 */
export function crashBeforeCheckpoint<Tx>(store: OutboxStore<Tx>, crashes: { count: number }): OutboxStore<Tx> {
  return {
    kind: store.kind,
    setup: () => store.setup(),
    insert: (event, tx) => store.insert(event, tx),
    nextOpenSequence: (topic, key) => store.nextOpenSequence(topic, key),
    openEventsOfKey: (topic, key, afterSequence, limit) => store.openEventsOfKey(topic, key, afterSequence, limit),
    get: (id) => store.get(id),
    markPublished: (result, options) => store.markPublished(result, options),
    claim: (ids, owner, leaseMs, token) => store.claim(ids, owner, leaseMs, token),
    claimForWorkflow: (id) => store.claimForWorkflow(id),
    release: (ids, token) => store.release(ids, token),
    markPublishedMany: (results, token) => store.markPublishedMany(results, token),
    recordFailure: (id, failure) => store.recordFailure(id, failure),
    transition: (id, change) => store.transition(id, change),
    findPending: (query) => store.findPending(query),
    list: (query) => store.list(query),
    stats: () => store.stats(),
    purgePublished: (before) => store.purgePublished(before),
    checkSetUp: () => store.checkSetUp(),
    close: () => store.close(),
    partitionCount: () => store.partitionCount(),
    heartbeat: (group, member, ttlMs) => store.heartbeat(group, member, ttlMs),
    acquire: (group, member, partitions, ttlMs) => store.acquire(group, member, partitions, ttlMs),
    releaseLeases: (group, member, partitions, leave) => store.releaseLeases(group, member, partitions, leave),
    partitionStatus: (group) => store.partitionStatus(group),
    openFeed(options: FeedOptions): ChangeFeed {
      const feed = store.openFeed(options);
      return {
        onGap: (listener) => feed.onGap(listener),
        async *batches(signal: AbortSignal): AsyncIterable<FeedBatch> {
          for await (const batch of feed.batches(signal)) {
            yield {
              ...batch,
              checkpoint: async () => {
                if (batch.events.length === 0) return batch.checkpoint();
                crashes.count += 1;
                throw new Error('relay killed after the starts, before the checkpoint');
              },
            };
          }
        },
      };
    },
  };
}

/**
 * The real store with `markPublished` failing its first `failures.left` calls (a store outage right
 * after Kafka acknowledged): the publication happened, its record did not.
 */
export function failingMarkPublished<S extends OutboxStore<unknown>>(store: S, failures: { left: number }): S {
  const wrapped = Object.create(store) as S;
  wrapped.markPublished = async (result, options) => {
    if (failures.left > 0) {
      failures.left -= 1;
      throw new Error('store unavailable while recording the publication (test fault)');
    }
    return store.markPublished(result, options);
  };
  return wrapped;
}
