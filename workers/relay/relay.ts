import { EventEmitter } from 'node:events';
import {
  OutboxError,
  OutboxErrorCode,
  minEventIdAt,
  type FeedBatch,
  type FeedClaimed,
  type FeedPartitions,
  type OutboxEvent,
} from '../../domain/outbox';
import { groupByKey } from './fast-path';
import { PartitionOwnership } from './partitions';
import { abortableDelay, mapLimit } from './async';
import { FeedCheckpoints } from './checkpoints';
import { applyRelayDefaults, type RelayEvents, type RelayOptions, type ResolvedRelayOptions, type RunningRelay } from './options';
import { enqueueKey, eventsNotHeld, isPermanentStartError, startEventWorkflow, wasStarted, type StartOutcome } from './start-event-workflow';

/**
 * Reads the store's change feed and starts one publish workflow per event, at most
 * `startConcurrency` at a time; saves the feed position only after every start of a batch was
 * acknowledged (or refused as a duplicate). A sweeper starts events still `pending` after a grace
 * period, in case the feed missed them.
 */
export class Relay extends EventEmitter<RelayEvents> {
  private readonly options: ResolvedRelayOptions;
  /** Partitioned: the leases this relay holds. */
  readonly ownership: PartitionOwnership | undefined;
  /** Partitioned: the feed reading the current partitions, and how it ends. */
  private epoch: { abort: AbortController; done: Promise<void> } | undefined;
  private wakeFeed: (() => void) | undefined;

  constructor(options: RelayOptions) {
    super();
    this.options = applyRelayDefaults(options);
    this.ownership =
      options.partitions === undefined
        ? undefined
        : new PartitionOwnership({
            store: this.options.store,
            group: this.options.name,
            member: options.partitions.member,
            leaseMs: options.partitions.leaseMs,
            logger: this.options.logger,
            onChange: (owned) => this.repartition(owned),
          });
  }

  /** Stops the feed reading the partitions held until now (its last position saved), for the feed loop to read `owned`. */
  private async repartition(owned: readonly number[]): Promise<void> {
    const epoch = this.epoch;
    epoch?.abort.abort();
    await epoch?.done;
    this.emit('partitions', owned);
    this.wakeFeed?.();
  }

  /**
   * Starts the feed loop and the sweeper; resolves once the feed is open and positioned (its first
   * batch, possibly empty, was read), so events committed after that are the feed's, not the sweeper's.
   * A feed that fails to open is retried in the background (see the `error` event).
   */
  async start(): Promise<RunningRelay> {
    const abort = new AbortController();
    const ready = new Promise<void>((resolve) => {
      this.once('ready', () => resolve());
    });
    // Partitioned: the first leases are taken before anything is read.
    await this.ownership?.start();
    const feedLoop = this.ownership === undefined ? this.runFeed(abort.signal) : this.runPartitionedFeed(abort.signal);
    // One sweep at a time, and one timer: a gap brings the next sweep forward to its grace period,
    // never later than it was due (gaps that recur faster than the grace period once postponed it
    // for ever), a sweep due while one runs follows it, and nothing is scheduled after shutdown.
    let sweepTimer: NodeJS.Timeout | undefined;
    let sweepAt = Infinity;
    let sweeping: Promise<void> | undefined;
    let sweepDue = false;
    /** Schedules the next sweep in `delayMs`, unless one is due sooner. */
    const scheduleSweep = (delayMs: number): void => {
      const at = Date.now() + delayMs;
      if (abort.signal.aborted || at >= sweepAt) return;
      clearTimeout(sweepTimer);
      sweepAt = at;
      sweepTimer = setTimeout(runSweep, delayMs);
    };
    const runSweep = (): void => {
      sweepAt = Infinity;
      if (sweeping !== undefined) {
        sweepDue = true;
        return;
      }
      sweeping = this.sweepNow(abort.signal)
        .then(
          () => undefined,
          (err: unknown) => this.report(err, 'sweep failed'),
        )
        .finally(() => {
          sweeping = undefined;
          scheduleSweep(sweepDue ? 0 : this.options.sweepIntervalMs);
          sweepDue = false;
        });
    };
    scheduleSweep(this.options.sweepIntervalMs);
    const onGap = (): void => {
      // Whatever the feed may have skipped is found by a sweep once the grace period has passed.
      scheduleSweep(this.options.sweepGraceMs);
    };
    this.on('gap', onGap);
    await ready;
    return {
      shutdown: async () => {
        abort.abort();
        clearTimeout(sweepTimer);
        this.off('gap', onGap);
        await feedLoop;
        await sweeping;
        await this.ownership?.stop();
      },
    };
  }

  /** Starts every event still `pending` that is older than the grace period; stops between pages once `signal` aborts. */
  async sweepNow(signal?: AbortSignal): Promise<{ found: number; started: number; duplicates: number }> {
    const { store, sweepGraceMs, sweepBatchSize, now } = this.options;
    const beforeId = minEventIdAt(now() - sweepGraceMs);
    const totals = { found: 0, started: 0, duplicates: 0 };
    let afterId: string | undefined;
    // Partitioned: the partitions held when the sweep began, and only while they are.
    const partitions = this.ownership?.partitions();
    while (signal?.aborted !== true && (partitions === undefined || (partitions.length > 0 && this.ownership?.valid() === true))) {
      const page = await store.findPending({ beforeId, afterId, limit: sweepBatchSize, partitions });
      if (page.length === 0) break;
      if (partitions !== undefined && this.ownership?.valid() !== true) break;
      const outcomes = await this.dispatch(page, 'sweep');
      totals.found += page.length;
      totals.started += outcomes.filter(wasStarted).length;
      totals.duplicates += outcomes.filter((o) => o === 'duplicate').length;
      afterId = page[page.length - 1]?.id;
      if (page.length < sweepBatchSize) break;
    }
    if (totals.started > 0) {
      this.options.logger.info('sweeper started pending events the feed had not', totals);
    }
    this.emit('sweep', totals);
    return totals;
  }

  /**
   * The feed loop of a partitioned relay: one feed over the partitions it holds, ended and opened
   * again over the new set each time it changes; while it holds none, it waits.
   */
  private async runPartitionedFeed(signal: AbortSignal): Promise<void> {
    const ownership = this.ownership as PartitionOwnership;
    while (!signal.aborted) {
      const owned = ownership.partitions();
      if (owned.length === 0) {
        // Nothing to read (the other relays hold every partition): ready all the same.
        this.emit('ready');
        let wake = (): void => undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          this.wakeFeed = resolve;
          signal.addEventListener('abort', wake, { once: true });
        });
        signal.removeEventListener('abort', wake);
        this.wakeFeed = undefined;
        continue;
      }
      const abort = new AbortController();
      const stop = (): void => abort.abort();
      signal.addEventListener('abort', stop, { once: true });
      const done = this.runFeed(abort.signal, { ids: owned, member: ownership.member });
      this.epoch = { abort, done };
      await done;
      signal.removeEventListener('abort', stop);
      this.epoch = undefined;
    }
  }

  /**
   * The feed loop. While the relay is behind, the next batch is read (and, with a fast path, claimed)
   * while the current one is dispatched; a batch's position is saved while the next one is
   * dispatched, at most once per `checkpointEveryMs` while busy (see FeedCheckpoints).
   * Partitioned: over `partitions` only, each batch dispatched only while their leases are held.
   */
  private async runFeed(signal: AbortSignal, partitions?: FeedPartitions): Promise<void> {
    const { batchSize, retryDelayMs, checkpointEveryMs, logger, metrics } = this.options;
    const checkpoints = new FeedCheckpoints(checkpointEveryMs, (events) => {
      metrics?.checkpointSaved();
      this.emit('checkpoint', { events });
    });
    while (!signal.aborted) {
      if (partitions !== undefined && this.ownership?.valid() !== true) {
        // Leases not (or no longer) held: nothing is read, nor claimed in the read (PostgreSQL), until
        // the next renewal round renews them or hands the partitions on.
        await abortableDelay(retryDelayMs, signal);
        continue;
      }
      let readAhead: Promise<IteratorResult<FeedBatch>> | undefined;
      /** A batch read and not (yet) dispatched: its fast claims are given back if it never is. */
      let undispatched: FeedBatch | undefined;
      checkpoints.open();
      let batches: AsyncIterator<FeedBatch> | undefined;
      let failure: { error: unknown } | undefined;
      try {
        const iterator = this.openFeed(signal, partitions);
        batches = iterator;
        let ahead = this.readBatch(iterator);
        readAhead = ahead;
        for (;;) {
          const waitFrom = Date.now();
          const next = await ahead;
          const readWaitMs = Date.now() - waitFrom;
          // Stopped: a batch read ahead is given back (below), not dispatched.
          if (next.done === true || signal.aborted) break;
          readAhead = undefined;
          const batch = next.value;
          undispatched = batch;
          this.emit('ready');
          // Partitioned: a batch is dispatched only while this relay holds its partitions' leases
          // (frozen past them, another relay has taken over and reads the same events).
          if (partitions !== undefined && batch.events.length > 0) this.assertLeases(partitions);
          // Behind (a full batch): the next batch is read, and claimed, while this one is dispatched.
          // Caught up: it is read after, so what is written meanwhile comes as one batch, not many
          // small ones that each cost a send and a mark. Once aborted, the next read ends the feed.
          const behind = batch.events.length >= batchSize;
          const readNext = (): void => {
            ahead = this.readBatch(iterator);
            readAhead = ahead;
          };
          if (behind) readNext();
          for (const event of batch.events) metrics?.eventsRelayed.inc({ type: event.type });
          const dispatchedFrom = Date.now();
          // From here the fast path owns the batch's claims: it gives back what it does not send.
          undispatched = undefined;
          const outcomes = await this.dispatch(batch.events, 'feed', batch.claimed);
          if (batch.events.length > 0) logger.debug('feed batch dispatched', { events: batch.events.length, behind, readWaitMs, dispatchMs: Date.now() - dispatchedFrom });
          if (!behind) readNext();
          const started = outcomes.filter(wasStarted).length;
          this.emit('batch', { events: batch.events.length, started, duplicates: outcomes.length - started });
          await checkpoints.dispatched(batch);
        }
        // Stopped: what was dispatched since the last save is saved now.
        await checkpoints.flush();
      } catch (error) {
        failure = { error };
      }
      await this.giveBack(readAhead, undispatched);
      await batches?.return?.().catch(() => undefined);
      if (failure !== undefined) {
        this.emit('ready');
        this.report(failure.error, 'relay feed failed; reopening it from the last checkpoint');
        logger.debug('relay waiting before reopening the feed', { retryDelayMs });
        await abortableDelay(retryDelayMs, signal);
      }
    }
  }

  /** The store's change feed from its checkpoint (with the fast path's claims, of `partitions` only when given), its gaps reported. */
  private openFeed(signal: AbortSignal, partitions: FeedPartitions | undefined): AsyncIterator<FeedBatch> {
    const { store, name, batchSize, maxWaitMs, fastPath } = this.options;
    const feed = store.openFeed({ name, batchSize, maxWaitMs, claim: fastPath?.feedClaim(), partitions });
    feed.onGap((reason) => this.emit('gap', reason));
    return feed.batches(signal)[Symbol.asyncIterator]();
  }

  private assertLeases(partitions: FeedPartitions): void {
    if (this.ownership?.valid() === true) return;
    throw new OutboxError(OutboxErrorCode.leaseLost, `relay ${partitions.member} read a batch of partitions ${partitions.ids.join(', ')} after its leases ran out: not dispatched`, {
      context: { feed: this.options.name, member: partitions.member, partitions: partitions.ids.join(',') },
    });
  }

  /** The feed's next batch, with its fast-path events claimed (by the feed's read itself where the store can). */
  private async readBatch(batches: AsyncIterator<FeedBatch>): Promise<IteratorResult<FeedBatch>> {
    const next = await batches.next();
    const { fastPath } = this.options;
    if (next.done === true || fastPath === undefined || next.value.claimed !== undefined) return next;
    const claimed = await fastPath.claimAhead(next.value.events);
    return { done: false, value: { ...next.value, claimed } };
  }

  /**
   * Batches read and never dispatched (read ahead before a shutdown or a failure, refused for lost
   * leases): their fast claims are released, so the relay that reads them next (or, once their
   * grace period has passed, the sweeper) publishes them at once instead of after the lease.
   */
  private async giveBack(readAhead: Promise<IteratorResult<FeedBatch>> | undefined, undispatched: FeedBatch | undefined): Promise<void> {
    const next = await readAhead?.catch(() => undefined);
    for (const claimed of [next?.done === false ? next.value.claimed : undefined, undispatched?.claimed]) {
      if (claimed === undefined || claimed.ids.size === 0) continue;
      await this.options.store.release([...claimed.ids], claimed.token).catch((err: unknown) => this.options.logger.warn('could not release fast claims of an undispatched batch; they lapse with their lease', { error: err, events: claimed.ids.size }));
    }
  }

  /**
   * Starts a batch's workflows, after the fast path (when there is one) took what it can publish
   * itself: for the feed's batches and the sweeper's pages alike, so a backlog the sweeper finds goes
   * the fast way too (claims keep the two from publishing one event twice).
   */
  private async dispatch(events: OutboxEvent[], source: 'feed' | 'sweep', claimed?: FeedClaimed): Promise<StartOutcome[]> {
    const { fastPath, metrics } = this.options;
    // Ordered events the sweeper finds go to their sequencers: the sweeper runs beside the feed, and
    // the fast path's check of a key's next open sequence holds within one batch, not across two.
    const fast = (e: OutboxEvent): boolean => fastPath !== undefined && fastPath.eligible(e) && (source === 'feed' || e.sequence === null);
    const eligible = events.filter(fast);
    const rest = events.filter((e) => !fast(e));
    metrics?.eventsByPath.inc({ path: 'workflow' }, rest.length);
    if (!fastPath || eligible.length === 0) return this.startAll(rest, source);
    const [started, result] = await Promise.all([this.startAll(rest, source), fastPath.publish(eligible, claimed)]);
    // A sweep's events the fast path could not claim are owned by a workflow (the sweep's query
    // leaves out live fast claims; one made since is the rare exception): started again, which is a
    // duplicate while that workflow runs and a new run when it closed without publishing.
    const fallback = await this.startAll(source === 'sweep' ? [...result.fallback, ...result.skipped] : result.fallback, 'fallback');
    metrics?.eventsByPath.inc({ path: 'fast' }, result.published.length);
    metrics?.eventsByPath.inc({ path: 'fallback' }, result.fallback.length);
    this.emit('fast', { published: result.published.length, fallback: result.fallback.length, skipped: result.skipped.length });
    return [...started, ...fallback];
  }

  private async startAll(events: OutboxEvent[], source: 'feed' | 'sweep' | 'fallback'): Promise<StartOutcome[]> {
    const { workflowClient, taskQueue, publishPolicy, workflowIdPrefix, eagerStart, startConcurrency, sequencerBufferLimit, sequencerRunLimit, logger, metrics } = this.options;
    const unordered = events.filter((e) => e.sequence === null);
    // Ordered events: one signal-with-start per key with all of the key's events (see enqueueKey).
    const byKey = groupByKey(events.filter((e) => e.sequence !== null));
    const [outcomes, groups] = await Promise.all([
      mapLimit(unordered, startConcurrency, async (event): Promise<StartOutcome> => {
        const outcome = await this.refusedIfPermanent([event], () => startEventWorkflow(workflowClient, event, { taskQueue, policy: publishPolicy, workflowIdPrefix, eagerStart, onEagerStart: () => metrics?.workflowsStartedEagerly.inc() }));
        if (outcome === 'duplicate') metrics?.duplicatesRefused.inc({ source });
        else if (outcome === 'started') metrics?.workflowsStarted.inc({ source });
        logger.debug(outcome === 'duplicate' ? 'workflow already exists (deduplicated)' : `workflow ${outcome}`, {
          eventId: event.id,
          type: event.type,
          workflowId: `${workflowIdPrefix}${event.id}`,
        });
        return outcome;
      }),
      mapLimit([...byKey.values()], startConcurrency, async (group): Promise<StartOutcome[]> => {
        // A sweep finds the events a held-back key's sequencer already has: they are not handed over
        // again (its history would grow by a signal each sweep), nor counted or logged as started.
        const handOver = source === 'sweep' ? new Set(await eventsNotHeld(workflowClient, group, workflowIdPrefix)) : new Set(group);
        const held = group.length - handOver.size;
        if (held > 0) metrics?.duplicatesRefused.inc({ source }, held);
        if (handOver.size === 0) return group.map(() => 'duplicate');
        const outcome = await this.refusedIfPermanent([...handOver], async () => {
          await enqueueKey(workflowClient, [...handOver], { taskQueue, policy: publishPolicy, workflowIdPrefix, sequencerBufferLimit, sequencerRunLimit });
          return 'sequenced';
        });
        if (outcome === 'sequenced') {
          metrics?.eventsSequenced.inc({ source }, handOver.size);
          logger.debug('events handed to their key sequencer', { key: group[0]?.key, topic: group[0]?.topic, events: handOver.size });
        }
        return group.map((e) => (handOver.has(e) ? outcome : 'duplicate'));
      }),
    ]);
    return [...outcomes, ...groups.flat()];
  }

  /**
   * Runs a start; when Temporal refuses it for good (isPermanentStartError), the events become
   * `stuck` with the reason (the CLI lists them, an operator decides) instead of the error stopping
   * the feed, which would read the same batch again forever. Other errors propagate (the feed retries).
   */
  private async refusedIfPermanent(events: readonly OutboxEvent[], start: () => Promise<StartOutcome>): Promise<StartOutcome> {
    try {
      return await start();
    } catch (err) {
      if (!isPermanentStartError(err)) throw err;
      const lastError = `Temporal refused to start its workflow: ${err instanceof Error ? err.message : String(err)}`;
      for (const event of events) {
        if (await this.options.store.transition(event.id, { from: 'pending', to: 'stuck', attempts: event.attempts, lastError })) {
          this.options.metrics?.eventsStuck.inc({ type: event.type });
        }
        this.options.logger.error('event stuck: its workflow can never start', { eventId: event.id, type: event.type, lastError });
      }
      return 'refused';
    }
  }

  private report(err: unknown, message: string): void {
    this.options.logger.error(message, { error: err });
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

/** A workflow started, or an ordered event handed to its sequencer: not a duplicate, not refused. */
export type { RelayEvents, RelayOptions, RunningRelay } from './options';
export { mapLimit } from './async';

export function createRelay(options: RelayOptions): Relay {
  return new Relay(options);
}
