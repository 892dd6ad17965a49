import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Message, PartitionMetadata, Producer, RecordMetadata } from 'kafkajs';
import {
  eventIdTime,
  OutboxError,
  OutboxErrorCode,
  silentLogger,
  toKafkaMessage,
  type EventRegistry,
  type FeedClaim,
  type FeedClaimed,
  type Logger,
  type OutboxEvent,
  type OutboxRelayStore,
  type PublishResult,
} from '../../domain/outbox';
import { CoalescingProducer, type OutboxSender } from '../kafka/coalescing-producer';
import type { KafkaPositionReader } from '../kafka/position-reader';
import type { OutboxMetrics } from '../process/metrics';

/**
 * The kafkajs request timeout for the fast path's client, whose producer retries once: a send ends
 * within about twice this long, inside the default lease.
 */
export const FAST_PATH_REQUEST_TIMEOUT_MS = 15_000;

/** The longest a send takes: kafkajs' request timeout, twice (the producer retries once). */
const LONGEST_SEND_MS = 2 * FAST_PATH_REQUEST_TIMEOUT_MS;

/**
 * Where the sends go: the relay's producer under a coalescing queue of the FastPath's own, or a
 * sender someone else owns (a worker's run queue; tests wrap it to inject failures).
 */
export type FastPathSending =
  | {
      /**
       * The relay's producer: `createOutboxProducer(kafka, { retries: 1 })` on a client with
       * `requestTimeout: FAST_PATH_REQUEST_TIMEOUT_MS`, so every send ends well inside the lease.
       */
      producer: Pick<Producer, 'sendBatch'>;
      /** A topic's partitions (`cachedPartitions` over an admin client). */
      partitionsOf: (topic: string) => Promise<PartitionMetadata[]>;
      sender?: never;
    }
  | { sender: OutboxSender; producer?: never; partitionsOf?: never };

export type FastPathOptions = FastPathSending & FastPathSettings;

export interface FastPathSettings {
  /** Which events take the fast path: their topic or their type is listed. */
  topics?: readonly string[];
  types?: readonly string[];
  /**
   * Every event it is handed goes, without a topic or type list: a worker's key sequencers hand it
   * their keys' runs (the `publishRun` activity). @default false
   */
  everyEvent?: boolean;
  /**
   * The longest a send takes once it left (kafkajs' request timeout times its
   * tries, `sendWindowMs`). @default twice FAST_PATH_REQUEST_TIMEOUT_MS (one retry)
   */
  longestSendMs?: number;
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
  /**
   * Reads what a Kafka position holds (`createKafkaPositionReader`), when the store says another event
   * is recorded at the position an acknowledgement named: Kafka tells whether the write is real.
   */
  positions: KafkaPositionReader;
  /**
   * The service's event types: each event is published as the version its type is published as,
   * upcast from the version it was written as; one that cannot be becomes a workflow, which records
   * why and escalates it. @default as written
   */
  contracts?: Pick<EventRegistry, 'asPublished'>;
}

/** What the fast path did with a batch: published, or handed to the workflow path (`fallback`). */
export interface FastPathResult {
  published: OutboxEvent[];
  /** Events to start as workflows: their send failed, or (ordered) their key is not clear. */
  fallback: OutboxEvent[];
  /** Events someone else owns (a workflow, or a fast claim of an earlier relay run): left alone. */
  skipped: OutboxEvent[];
  /**
   * Where Kafka put each published event, in `published`'s order, when this batch's claims recorded
   * every one of them in the store (as the store now says); absent otherwise.
   */
  receipts?: PublishResult[];
}

/**
 * The fast path: the relay publishes eligible events itself, in batches, and marks them published;
 * only an event whose publication fails becomes a Temporal workflow (`outbox-<eventId>`), with the
 * normal retries, escalation, signals, Web UI and CLI.
 *
 * Ownership is decided by the store: the fast path claims events (pending, nobody's) for a lease
 * before it sends; a workflow's publish activity claims them for good and cannot while a fast lease
 * lives. So the fast path, the sweeper and a workflow never publish one event at the same time.
 * After a failed send the fast path releases its claims and hands the events to workflows; every
 * claim it does not end with a publication is released (a failure, a claim too old to send, a run cut
 * short), and its claims carry its token, so a relay late after its lease can neither release nor
 * mark an event another relay has claimed since.
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
  private readonly coalescing: OutboxSender;
  private readonly everyEvent: boolean;
  private readonly leaseMs: number;
  private readonly ackTimeoutMs: number;
  /**
   * How old a claim made at read time may be when its send starts: the send must still end inside
   * the lease. 0: too short a lease to claim ahead; the claim is made just before the send.
   */
  private readonly claimAheadMs: number;
  private readonly positions: KafkaPositionReader;
  private readonly contracts: Pick<EventRegistry, 'asPublished'> | undefined;
  /** Every claim of this fast path carries it (see OutboxStore.claim). */
  readonly claimToken = randomUUID();

  constructor(
    private readonly store: Pick<OutboxRelayStore, 'claim' | 'release' | 'markPublishedMany' | 'markPublished' | 'nextOpenSequence'>,
    options: FastPathOptions,
    private readonly logger: Logger = silentLogger,
    private readonly metrics?: OutboxMetrics,
  ) {
    this.topics = new Set(options.topics ?? []);
    this.types = new Set(options.types ?? []);
    this.everyEvent = options.everyEvent === true;
    if (this.topics.size === 0 && this.types.size === 0 && !this.everyEvent) {
      throw new OutboxError(OutboxErrorCode.invalidConfig, 'fast path: name at least one topic or event type');
    }
    this.leaseMs = options.leaseMs ?? 60_000;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 10_000;
    if (!Number.isSafeInteger(this.leaseMs) || this.leaseMs <= this.ackTimeoutMs) {
      throw new OutboxError(OutboxErrorCode.invalidConfig, `fast path: leaseMs (${this.leaseMs}) must be an integer above ackTimeoutMs (${this.ackTimeoutMs})`);
    }
    this.claimAheadMs = Math.max(0, this.leaseMs - (options.longestSendMs ?? LONGEST_SEND_MS) - this.ackTimeoutMs);
    this.positions = options.positions;
    this.contracts = options.contracts;
    this.coalescing =
      options.sender ?? new CoalescingProducer(options.producer, { lingerMs: 0, maxBatch: options.maxBatch ?? 500, maxQueued: 100_000, partitionsOf: options.partitionsOf });
  }

  /** Whether an event takes the fast path at all. */
  eligible(event: OutboxEvent): boolean {
    return this.everyEvent || this.topics.has(event.topic) || this.types.has(event.type);
  }

  /**
   * The claim a feed makes as it reads (FeedOptions.claim), so the relay can read and claim the next
   * batch while it publishes this one; none when the lease is too short to claim ahead.
   */
  feedClaim(): FeedClaim | undefined {
    return this.claimAheadMs > 0 ? { topics: [...this.topics], types: [...this.types], leaseMs: this.leaseMs, token: this.claimToken } : undefined;
  }

  /**
   * Claims a batch's eligible events just after the read, for a feed that did not claim them itself:
   * the relay does this while the previous batch is published.
   */
  async claimAhead(events: readonly OutboxEvent[]): Promise<FeedClaimed | undefined> {
    if (this.claimAheadMs === 0) return undefined;
    const at = Date.now();
    const ids = events.filter((e) => this.eligible(e)).map((e) => e.id);
    return { ids: new Set(ids.length === 0 ? [] : await this.store.claim(ids, 'fast', this.leaseMs, this.claimToken)), at, token: this.claimToken };
  }

  /** Gives up claims of this fast path (a no-op for events no longer pending, or claimed by someone else since). */
  async release(ids: Iterable<string>): Promise<void> {
    const list = [...ids];
    await this.store.release(list, this.claimToken).catch((err: unknown) => this.logger.warn('fast path: could not release claims; they lapse with their lease', { error: err, events: list.length }));
  }

  /**
   * Publishes eligible events. `claimedAhead`: the claims made when they were read (FeedOptions.claim
   * or claimAhead); without it the events are claimed here. Whatever it does not publish, it releases
   * before it returns (or throws), so the workflows it hands events to can claim them at once.
   */
  async publish(events: readonly OutboxEvent[], claimedAhead?: FeedClaimed): Promise<FastPathResult> {
    const result: FastPathResult = { published: [], fallback: [], skipped: [] };
    if (events.length === 0) return result;
    if (claimedAhead !== undefined && Date.now() - claimedAhead.at > this.claimAheadMs) return this.handBack(events, claimedAhead);
    const held = new Set(claimedAhead?.ids ?? []);
    try {
      const { unordered, runs } = await this.sendable(events, result);
      const wanted = [...unordered, ...runs.flat()].map((e) => e.id);
      const claimedAt = claimedAhead?.at ?? Date.now();
      const claimed = new Set(claimedAhead === undefined ? await this.store.claim(wanted, 'fast', this.leaseMs, this.claimToken) : wanted.filter((id) => held.has(id)));
      for (const id of claimed) held.add(id);
      const toSend = this.claimedOnly(unordered, runs, claimed, result);
      const sentAt = Date.now();
      const { receipts, failed } = await this.send(toSend, claimedAt);
      const markedAt = Date.now();
      const recorded = await this.record(receipts, failed);
      result.published.push(...recorded.published.map((r) => r.event));
      if (recorded.all) result.receipts = recorded.published;
      result.fallback.push(...failed);
      this.count(result.published, sentAt);
      this.logger.debug('fast path batch', { events: events.length, sent: toSend.length, sendMs: markedAt - sentAt, markMs: Date.now() - markedAt });
      return result;
    } finally {
      // Published events are no longer pending: only the others are released (none: no round trip).
      for (const event of result.published) held.delete(event.id);
      if (held.size > 0) await this.release(held);
    }
  }

  /**
   * Claims made at read time that are too old to send inside their lease: given back at once and
   * handed to workflows (the feed has passed them), not left to lapse for a sweep to find.
   */
  private async handBack(events: readonly OutboxEvent[], claimedAhead: FeedClaimed): Promise<FastPathResult> {
    this.logger.warn('fast path: claims made at read time are too old to send inside their lease; given back, the events become workflows', {
      events: events.length,
      ageMs: Date.now() - claimedAhead.at,
    });
    await this.release(claimedAhead.ids);
    return { published: [], fallback: events.filter((e) => claimedAhead.ids.has(e.id)), skipped: events.filter((e) => !claimedAhead.ids.has(e.id)) };
  }

  /**
   * The events that may go fast: every unordered one, and of each key only the gap-free run from its
   * next open sequence (the store is asked for all keys of the batch at once). The rest of a key goes
   * to `result.fallback`, its sequencer.
   */
  private async sendable(events: readonly OutboxEvent[], result: FastPathResult): Promise<{ unordered: OutboxEvent[]; runs: OutboxEvent[][] }> {
    const unordered = events.filter((e) => e.sequence === null);
    const keyGroups = [...groupByKey(events.filter((e) => e.sequence !== null)).values()];
    const opens = await Promise.all(keyGroups.map((group) => this.store.nextOpenSequence((group[0] as OutboxEvent).topic, (group[0] as OutboxEvent).key)));
    const runs = keyGroups.map((group, g) => {
      group.sort((a, b) => (a.sequence ?? 0) - (b.sequence ?? 0));
      // Nothing open: these were settled meanwhile (the claim skips them).
      const open = opens[g] ?? group[0]?.sequence ?? 0;
      let run = 0;
      while (run < group.length && group[run]?.sequence === open + run) run += 1;
      result.fallback.push(...group.slice(run));
      return group.slice(0, run);
    });
    return { unordered, runs };
  }

  /**
   * What is sent: the claimed unordered events, and each run up to its first event the fast path could
   * not claim (owned elsewhere: skipped); what follows it in the run waits for it (its sequencer).
   */
  private claimedOnly(unordered: OutboxEvent[], runs: OutboxEvent[][], claimed: ReadonlySet<string>, result: FastPathResult): OutboxEvent[] {
    const toSend: OutboxEvent[] = [];
    for (const event of unordered) (claimed.has(event.id) ? toSend : result.skipped).push(event);
    for (const run of runs) {
      const stop = run.findIndex((e) => !claimed.has(e.id));
      toSend.push(...(stop === -1 ? run : run.slice(0, stop)));
      if (stop !== -1) {
        result.skipped.push(run[stop] as OutboxEvent);
        result.fallback.push(...run.slice(stop + 1));
      }
    }
    return toSend;
  }

  /**
   * Sends unordered events one by one (coalesced into requests) and each key's run as one group, which
   * the coalescing producer never splits: a key's run is written together or not at all. A group
   * still queued when a send could no longer end inside the lease claimed at `claimedAt` (requests
   * ahead of it hung) is withdrawn and fails: it never reaches Kafka after its claim has ended.
   */
  private async send(toSend: OutboxEvent[], claimedAt: number): Promise<{ receipts: Array<PublishResult & { event: OutboxEvent }>; failed: OutboxEvent[] }> {
    const receipts: Array<PublishResult & { event: OutboxEvent }> = [];
    const failed: OutboxEvent[] = [];
    const signal = this.claimAheadMs > 0 ? AbortSignal.timeout(Math.max(0, claimedAt + this.claimAheadMs - Date.now())) : undefined;
    // Every group of the batch listens to it while queued.
    if (signal !== undefined) setMaxListeners(0, signal);
    const all: OutboxEvent[][] = [...toSend.filter((e) => e.sequence === null).map((e) => [e]), ...groupByKey(toSend.filter((e) => e.sequence !== null)).values()];
    const prepared = await Promise.all(all.map(async (group) => ({ group, messages: await this.messagesOf(group) })));
    const groups: OutboxEvent[][] = [];
    const sends: Array<Promise<RecordMetadata[]>> = [];
    for (const { group, messages } of prepared) {
      if (messages === undefined) {
        failed.push(...group);
        continue;
      }
      groups.push(group);
      sends.push(this.coalescing.send({ topic: (group[0] as OutboxEvent).topic, acks: -1, timeout: this.ackTimeoutMs, messages }, { signal }));
    }
    const outcomes = await Promise.allSettled(sends);
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
        receipts.push({ event, eventId: event.id, topic: event.topic, partition: meta.partition, offset: meta.baseOffset, publishedAt: new Date(), attempts: 1, alreadyPublished: false });
      });
    });
    return { receipts, failed };
  }

  /**
   * A group's messages, each event in the version its type is published as; undefined when one cannot
   * be: the group becomes workflows (a key's run stays whole, in order), whose attempt records why.
   */
  private async messagesOf(group: OutboxEvent[]): Promise<Message[] | undefined> {
    if (this.contracts === undefined) return group.map(toKafkaMessage);
    const contracts = this.contracts;
    try {
      return (await Promise.all(group.map((event) => contracts.asPublished(event)))).map(toKafkaMessage);
    } catch (err) {
      this.logger.warn('fast path: an event cannot be published in its type\'s version; its group becomes workflows', { events: group.map((e) => e.id), error: err });
      return undefined;
    }
  }

  /**
   * Tells the store where Kafka put each event, in one statement (a crash before it: the sweeper's
   * workflow finds the claim, waits it out and publishes again, with the same event id). An event at a
   * position the store gives another event is checked against Kafka: its own record there is a real
   * write (the topic was recreated, or its log truncated), recorded over the stale one and never sent
   * again; any other record means the acknowledgement wrote nothing of it, and it goes to `failed`.
   * Returns the receipts of the events Kafka has; `all` says the store took each of these receipts.
   */
  private async record(receipts: Array<PublishResult & { event: OutboxEvent }>, failed: OutboxEvent[]): Promise<{ published: Array<PublishResult & { event: OutboxEvent }>; all: boolean }> {
    const { marked, positionTaken } = await this.store.markPublishedMany(receipts, this.claimToken);
    const taken = new Set(positionTaken.map((r) => r.eventId));
    // Fewer marked than sent: some claims were taken over, and nothing says which (`all`: false).
    const published = receipts.filter((r) => !taken.has(r.eventId));
    let all = marked >= published.length;
    if (!all) {
      this.logger.warn('fast path: published, but some claims were taken over before they were recorded; their new owners publish them again (same event id)', { sent: published.length, recorded: marked });
    }
    for (const receipt of receipts.filter((r) => taken.has(r.eventId))) {
      const found = await this.positions.contentAt(receipt.topic, receipt.partition, receipt.offset).catch((err: unknown) => {
        this.logger.warn('fast path: could not read the Kafka position another event is recorded at; the event becomes a workflow', { eventId: receipt.eventId, error: err });
        return undefined;
      });
      const real = found?.kind === 'record' && found.eventId === receipt.eventId;
      this.logger.warn(real ? 'fast path: Kafka reused a recorded position for this event (topic recreated or log truncated): recorded over the stale one' : 'fast path: acknowledged at a position holding another record: not published, the event becomes a workflow', {
        eventId: receipt.eventId,
        topic: receipt.topic,
        partition: receipt.partition,
        offset: receipt.offset,
      });
      const superseded = real ? await this.store.markPublished(receipt, { supersede: true }) : 'not-found';
      if (superseded === 'not-found') {
        failed.push(receipt.event);
      } else {
        published.push(receipt);
        all &&= superseded === 'marked';
      }
    }
    return { published, all };
  }

  private count(published: readonly OutboxEvent[], sentAt: number): void {
    for (const event of published) {
      this.metrics?.eventsPublished.inc({ topic: event.topic });
      this.metrics?.publishAttempts.inc({ topic: event.topic, outcome: 'success' });
      this.metrics?.commitToKafka.observe({ topic: event.topic }, Math.max(0, sentAt - eventIdTime(event.id)) / 1000);
    }
  }
}

/** Events by topic and key, in their order: the unit of per-key order (a key's run is sent together). */
export function groupByKey(events: readonly OutboxEvent[]): Map<string, OutboxEvent[]> {
  const byKey = new Map<string, OutboxEvent[]>();
  for (const event of events) {
    const slot = `${event.topic}\0${event.key}`;
    const group = byKey.get(slot);
    if (group) group.push(event);
    else byKey.set(slot, [event]);
  }
  return byKey;
}
