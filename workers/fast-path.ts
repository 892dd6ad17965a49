import type { PartitionMetadata, Producer } from 'kafkajs';
import {
  eventIdTime,
  OutboxError,
  OutboxErrorCode,
  silentLogger,
  toKafkaMessage,
  type FeedClaim,
  type FeedClaimed,
  type Logger,
  type OutboxEvent,
  type OutboxStore,
  type PublishResult,
} from '../domain/outbox';
import { CoalescingProducer } from './coalescing-producer';
import type { OutboxMetrics } from './metrics';

/**
 * The kafkajs request timeout for the fast path's client, whose producer retries once: a send ends
 * within about twice this long, inside the default lease.
 */
export const FAST_PATH_REQUEST_TIMEOUT_MS = 15_000;

/** The longest a send takes: kafkajs' request timeout, twice (the producer retries once). */
const LONGEST_SEND_MS = 2 * FAST_PATH_REQUEST_TIMEOUT_MS;

export interface FastPathOptions {
  /** Which events take the fast path: their topic or their type is listed. */
  topics?: readonly string[];
  types?: readonly string[];
  /**
   * The relay's producer: `createOutboxProducer(kafka, { retries: 1 })` on a client with
   * `requestTimeout: FAST_PATH_REQUEST_TIMEOUT_MS`, so every send ends well inside the lease.
   */
  producer: Pick<Producer, 'sendBatch'>;
  /** A topic's partitions (`cachedPartitions` over an admin client). */
  partitionsOf: (topic: string) => Promise<PartitionMetadata[]>;
  /**
   * How long a fast claim shuts workflows out of an event, in ms. It must be longer than the longest
   * send (`ackTimeoutMs` plus kafkajs' request timeout), so a late acknowledgement never meets a
   * workflow publishing the same event. @default 60000
   */
  leaseMs?: number;
  /** How long Kafka may take to acknowledge a batch, in ms. @default 10000 */
  ackTimeoutMs?: number;
  /** Most messages in one request (a key's run larger than this goes alone). @default 500 */
  maxBatch?: number;
}

/** What the fast path did with a batch: published, or handed to the workflow path (`fallback`). */
export interface FastPathResult {
  published: OutboxEvent[];
  /** Events to start as workflows: their send failed, or (ordered) their key is not clear. */
  fallback: OutboxEvent[];
  /** Events someone else owns (a workflow, or a fast claim of an earlier relay run): left alone. */
  skipped: OutboxEvent[];
}

/**
 * The fast path: the relay publishes eligible events itself, in batches, and marks them published;
 * only an event whose publication fails becomes a Temporal workflow (`outbox-<eventId>`), with the
 * normal retries, escalation, signals, Web UI and CLI.
 *
 * Ownership is decided by the store: the fast path claims events (pending, nobody's) for a lease
 * before it sends; a workflow's publish activity claims them for good and cannot while a fast lease
 * lives. So the fast path, the sweeper and a workflow never publish one event at the same time.
 * After a failed send the fast path releases its claims and hands the events to workflows.
 *
 * Per-key order: an ordered event goes fast only when every earlier event of its key is already
 * published or resolved (its sequence is the key's next open one) and the events of its key in the
 * batch follow on without a gap; otherwise the key falls back to its sequencer (the gated path)
 * until it is clear. A failure hands the key's remaining events to the sequencer, in order. A key's
 * run is sent as one group the coalescing producer never splits (one partition, one request): it is
 * written together or not at all, so a fallback never leaves a later event of the key in Kafka ahead
 * of an earlier one.
 */
export class FastPath {
  private readonly topics: ReadonlySet<string>;
  private readonly types: ReadonlySet<string>;
  private readonly coalescing: CoalescingProducer;
  private readonly leaseMs: number;
  private readonly ackTimeoutMs: number;
  /**
   * How old a claim made at read time may be when its send starts: the send must still end inside
   * the lease. 0: too short a lease to claim ahead; the claim is made just before the send.
   */
  private readonly claimAheadMs: number;

  constructor(
    private readonly store: Pick<OutboxStore<never>, 'claim' | 'release' | 'markPublishedMany' | 'nextOpenSequence'>,
    options: FastPathOptions,
    private readonly logger: Logger = silentLogger,
    private readonly metrics?: OutboxMetrics,
  ) {
    this.topics = new Set(options.topics ?? []);
    this.types = new Set(options.types ?? []);
    if (this.topics.size === 0 && this.types.size === 0) {
      throw new OutboxError(OutboxErrorCode.invalidConfig, 'fast path: name at least one topic or event type');
    }
    this.leaseMs = options.leaseMs ?? 60_000;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 10_000;
    if (!Number.isSafeInteger(this.leaseMs) || this.leaseMs <= this.ackTimeoutMs) {
      throw new OutboxError(OutboxErrorCode.invalidConfig, `fast path: leaseMs (${this.leaseMs}) must be an integer above ackTimeoutMs (${this.ackTimeoutMs})`);
    }
    this.claimAheadMs = Math.max(0, this.leaseMs - LONGEST_SEND_MS - this.ackTimeoutMs);
    this.coalescing = new CoalescingProducer(options.producer, { lingerMs: 0, maxBatch: options.maxBatch ?? 500, maxQueued: 100_000, partitionsOf: options.partitionsOf });
  }

  /** Whether an event takes the fast path at all. */
  eligible(event: OutboxEvent): boolean {
    return this.topics.has(event.topic) || this.types.has(event.type);
  }

  /**
   * The claim a feed makes as it reads (FeedOptions.claim), so the relay can read and claim the next
   * batch while it publishes this one; none when the lease is too short to claim ahead.
   */
  feedClaim(): FeedClaim | undefined {
    return this.claimAheadMs > 0 ? { topics: [...this.topics], types: [...this.types], leaseMs: this.leaseMs } : undefined;
  }

  /**
   * Claims a batch's eligible events just after the read, for a feed that did not claim them itself:
   * the relay does this while the previous batch is published.
   */
  async claimAhead(events: readonly OutboxEvent[]): Promise<FeedClaimed | undefined> {
    if (this.claimAheadMs === 0) return undefined;
    const at = Date.now();
    const ids = events.filter((e) => this.eligible(e)).map((e) => e.id);
    return { ids: new Set(ids.length === 0 ? [] : await this.store.claim(ids, 'fast', this.leaseMs)), at };
  }

  /**
   * Publishes eligible events. `claimed`: the claims made when they were read (FeedOptions.claim or
   * claimAhead); without it the events are claimed here. A claim too old to send inside its lease is
   * not used: those events are skipped and left to lapse, and the sweeper publishes them.
   */
  async publish(events: readonly OutboxEvent[], claimedAhead?: FeedClaimed): Promise<FastPathResult> {
    const result: FastPathResult = { published: [], fallback: [], skipped: [] };
    if (events.length === 0) return result;
    const claimAgeMs = claimedAhead === undefined ? 0 : Date.now() - claimedAhead.at;
    if (claimAgeMs > this.claimAheadMs) {
      this.logger.warn('fast path: claims made at read time are too old to send inside their lease; the sweeper publishes these events once the lease lapses', {
        events: events.length,
        ageMs: claimAgeMs,
      });
      result.skipped.push(...events);
      return result;
    }

    // Ordered events: only a key's gap-free run from its next open sequence may go fast.
    const candidates: OutboxEvent[] = [];
    const byKey = new Map<string, OutboxEvent[]>();
    for (const event of events) {
      if (event.sequence === null) candidates.push(event);
      else byKey.set(`${event.topic}\0${event.key}`, [...(byKey.get(`${event.topic}\0${event.key}`) ?? []), event]);
    }
    const runs: OutboxEvent[][] = [];
    // Each key's next open sequence, asked for all keys of the batch at once (not one after another).
    const keyGroups = [...byKey.values()];
    const opens = await Promise.all(keyGroups.map((group) => this.store.nextOpenSequence((group[0] as OutboxEvent).topic, (group[0] as OutboxEvent).key)));
    for (const [g, group] of keyGroups.entries()) {
      group.sort((a, b) => (a.sequence ?? 0) - (b.sequence ?? 0));
      const first = group[0] as OutboxEvent;
      // Nothing open: these were settled meanwhile (the claim below skips them).
      const open = opens[g] ?? first.sequence ?? 0;
      let run = 0;
      while (run < group.length && group[run]?.sequence === open + run) run += 1;
      runs.push(group.slice(0, run));
      result.fallback.push(...group.slice(run));
    }

    const wanted = [...candidates, ...runs.flat()].map((e) => e.id);
    const claimed = new Set(claimedAhead === undefined ? await this.store.claim(wanted, 'fast', this.leaseMs) : wanted.filter((id) => claimedAhead.ids.has(id)));
    // Claimed ahead but not to be sent now (an ordered event behind its key's gap): given back.
    const wantedIds = new Set(wanted);
    const unused = claimedAhead === undefined ? [] : [...claimedAhead.ids].filter((id) => !wantedIds.has(id));
    const toSend: OutboxEvent[] = [];
    for (const event of candidates) (claimed.has(event.id) ? toSend : result.skipped).push(event);
    const cut: OutboxEvent[] = [];
    for (const run of runs) {
      // A run stops at its first event the fast path could not claim: what follows waits for it.
      const stop = run.findIndex((e) => !claimed.has(e.id));
      const sendable = stop === -1 ? run : run.slice(0, stop);
      toSend.push(...sendable);
      if (stop !== -1) {
        result.skipped.push(run[stop] as OutboxEvent);
        cut.push(...run.slice(stop + 1).filter((e) => claimed.has(e.id)));
        result.fallback.push(...run.slice(stop + 1));
      }
    }
    await this.store.release([...cut.map((e) => e.id), ...unused]);

    // Unordered events one by one (coalesced into requests); each ordered run as one group, which
    // the coalescing producer never splits: a key's run is written together or not at all.
    const sentAt = Date.now();
    const groups: OutboxEvent[][] = [];
    const runOf = new Map<string, OutboxEvent[]>();
    for (const event of toSend) {
      if (event.sequence === null) groups.push([event]);
      else {
        const slot = `${event.topic}\0${event.key}`;
        const run = runOf.get(slot);
        if (run) run.push(event);
        else {
          const fresh = [event];
          runOf.set(slot, fresh);
          groups.push(fresh);
        }
      }
    }
    const outcomes = await Promise.allSettled(
      groups.map((group) => this.coalescing.send({ topic: (group[0] as OutboxEvent).topic, acks: -1, timeout: this.ackTimeoutMs, messages: group.map(toKafkaMessage) })),
    );
    const receipts: PublishResult[] = [];
    const failed: OutboxEvent[] = [];
    outcomes.forEach((outcome, g) => {
      (groups[g] as OutboxEvent[]).forEach((event, i) => {
        const meta = outcome.status === 'fulfilled' ? outcome.value[i] : undefined;
        if (meta === undefined || meta.errorCode !== 0 || meta.baseOffset === undefined) {
          this.logger.warn('fast path: publish failed; the event becomes a workflow', {
            eventId: event.id,
            topic: event.topic,
            error: outcome.status === 'rejected' ? outcome.reason : `error code ${meta?.errorCode ?? 'none'}`,
          });
          this.metrics?.publishAttempts.inc({ topic: event.topic, outcome: 'failure' });
          failed.push(event);
          return;
        }
        receipts.push({ eventId: event.id, topic: event.topic, partition: meta.partition, offset: meta.baseOffset, publishedAt: new Date(), attempts: 1, alreadyPublished: false });
        result.published.push(event);
      });
    });
    // Kafka has these; the store is told in one statement (a crash before it: the sweeper's workflow
    // finds the lease, waits it out and publishes again, with the same event id).
    await this.store.markPublishedMany(receipts);
    await this.store.release(failed.map((e) => e.id));
    result.fallback.push(...failed);
    for (const event of result.published) {
      this.metrics?.eventsPublished.inc({ topic: event.topic });
      this.metrics?.publishAttempts.inc({ topic: event.topic, outcome: 'success' });
      this.metrics?.commitToKafka.observe({ topic: event.topic }, Math.max(0, sentAt - eventIdTime(event.id)) / 1000);
    }
    return result;
  }
}
