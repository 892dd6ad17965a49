import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { OutboxAdminStore, OutboxStats, PartitionStatus } from '../../domain/outbox';

/**
 * The outbox's Prometheus metrics. Names follow Prometheus conventions (`_total` counters, base
 * units in the name); labels stay low-cardinality (type, topic, reason, source — never an event id).
 */
export class OutboxMetrics {
  readonly registry: Registry;
  /** Committed events the relay's feed delivered to it. */
  readonly eventsRelayed: Counter<'type'>;
  readonly workflowsStarted: Counter<'source'>;
  readonly workflowsStartedEagerly: Counter;
  /** Ordered events handed to their key's sequencer, which starts their workflows one at a time. */
  readonly eventsSequenced: Counter<'source'>;
  /** Starts Temporal refused because the event's workflow already exists. */
  readonly duplicatesRefused: Counter<'source'>;
  readonly publishAttempts: Counter<'topic' | 'outcome'>;
  readonly publishFailures: Counter<'topic' | 'reason'>;
  readonly eventsPublished: Counter<'topic'>;
  readonly eventsStuck: Counter<'type'>;
  readonly eventsCompensated: Counter<'type'>;
  readonly eventsDiscarded: Counter<'type'>;
  readonly publishDuration: Histogram<'topic'>;
  /** From the event's creation in the write transaction (its UUIDv7 time) to Kafka's acknowledgement. */
  readonly commitToKafka: Histogram<'topic'>;
  readonly checkpointAge: Gauge;
  /** Events by the path that published them: `fast` (the relay), `fallback` (fast failed: a workflow), `workflow`. */
  readonly eventsByPath: Counter<'path'>;
  /** Requests to the store, each a round trip: MongoDB commands, PostgreSQL statements. */
  readonly storeRoundTrips: Counter<'command'>;
  private lastCheckpointAt: number | null = null;

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.eventsRelayed = new Counter({ name: 'txoutbox_events_relayed_total', help: 'Committed events read from the change feed.', labelNames: ['type'], registers });
    this.workflowsStarted = new Counter({ name: 'txoutbox_workflows_started_total', help: 'Publish workflows started.', labelNames: ['source'], registers });
    this.workflowsStartedEagerly = new Counter({
      name: 'txoutbox_workflows_started_eagerly_total',
      help: "Publish workflows whose first task the server handed back with the start (eager start, to this process's worker).",
      registers,
    });
    this.eventsSequenced = new Counter({
      name: 'txoutbox_events_sequenced_total',
      help: "Ordered events handed to their key's sequencer (it starts their publish workflows one at a time, in order).",
      labelNames: ['source'],
      registers,
    });
    this.duplicatesRefused = new Counter({
      name: 'txoutbox_workflow_duplicates_refused_total',
      help: 'Workflow starts refused by Temporal because the event already has one (deduplication).',
      labelNames: ['source'],
      registers,
    });
    this.publishAttempts = new Counter({ name: 'txoutbox_publish_attempts_total', help: 'Publish attempts to Kafka.', labelNames: ['topic', 'outcome'], registers });
    this.publishFailures = new Counter({ name: 'txoutbox_publish_failures_total', help: 'Failed publish attempts, by reason.', labelNames: ['topic', 'reason'], registers });
    this.eventsPublished = new Counter({ name: 'txoutbox_events_published_total', help: 'Events published to Kafka and marked published.', labelNames: ['topic'], registers });
    this.eventsStuck = new Counter({ name: 'txoutbox_events_stuck_total', help: 'Events escalated as stuck.', labelNames: ['type'], registers });
    this.eventsCompensated = new Counter({ name: 'txoutbox_events_compensated_total', help: 'Stuck events compensated by an operator.', labelNames: ['type'], registers });
    this.eventsDiscarded = new Counter({ name: 'txoutbox_events_discarded_total', help: 'Stuck events discarded by an operator.', labelNames: ['type'], registers });
    this.eventsByPath = new Counter({
      name: 'txoutbox_events_by_path_total',
      help: 'Events the relay handled, by path: fast (published by the relay), fallback (fast publish failed, handed to a workflow), workflow.',
      labelNames: ['path'],
      registers,
    });
    this.storeRoundTrips = new Counter({
      name: 'txoutbox_store_round_trips_total',
      help: 'Requests this process sent to its store, each a round trip: MongoDB commands (find, update, getMore, commitTransaction, ...), PostgreSQL statements (select, update, begin, ...).',
      labelNames: ['command'],
      registers,
    });
    const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
    this.publishDuration = new Histogram({ name: 'txoutbox_publish_duration_seconds', help: 'Time of one Kafka send with acks from all in-sync replicas.', labelNames: ['topic'], buckets, registers });
    this.commitToKafka = new Histogram({
      name: 'txoutbox_commit_to_kafka_seconds',
      help: 'From the event being written in its transaction to Kafka acknowledging it.',
      labelNames: ['topic'],
      buckets,
      registers,
    });
    const lastCheckpointAt = (): number | null => this.lastCheckpointAt;
    this.checkpointAge = new Gauge({
      name: 'txoutbox_feed_checkpoint_age_seconds',
      help: 'Seconds since the relay last saved its change-feed position.',
      registers,
      collect() {
        const at = lastCheckpointAt();
        if (at !== null) this.set((Date.now() - at) / 1000);
      },
    });
  }

  checkpointSaved(): void {
    this.lastCheckpointAt = Date.now();
  }

  /**
   * Gauges read from the store at each scrape: the age of the oldest unpublished (pending) event —
   * the lag, which grows while nothing publishes even if nothing new is written — and events by status,
   * the published ones estimated (`StatsOptions.published`).
   */
  observeStore(store: Pick<OutboxAdminStore, 'stats'>): void {
    // One read of the store per scrape: both gauges are collected at once and share it (each read its
    // own before, twice the queries).
    let reading: Promise<OutboxStats> | undefined;
    // The published count is the store's estimate: an exact one reads every published event kept, at
    // every scrape.
    const stats = (): Promise<OutboxStats> => (reading ??= store.stats({ published: 'estimated' }).finally(() => (reading = undefined)));
    new Gauge({
      name: 'txoutbox_oldest_unpublished_event_age_seconds',
      help: 'Age of the oldest event still pending (0 when none).',
      registers: [this.registry],
      async collect() {
        const { oldestPending } = await stats();
        this.set(oldestPending ? (Date.now() - oldestPending.occurredAt.getTime()) / 1000 : 0);
      },
    });
    new Gauge({
      name: 'txoutbox_events',
      help: "Events in the store, by status (published: the store's estimate, its table or collection count less the other statuses).",
      labelNames: ['status'],
      registers: [this.registry],
      async collect() {
        for (const [status, count] of Object.entries((await stats()).counts)) this.set({ status }, count);
      },
    });
  }
}

/** What a partitioned relay's metrics read: the partitions it holds now (see PartitionOwnership). */
export interface OwnedPartitions {
  partitions(): readonly number[];
}

/**
 * Per-partition gauges of a partitioned relay (issue 17), read at each scrape: which partitions it
 * holds, and for each of those its pending events and the age of its oldest (the partition's lag).
 * The store is asked at most once every `cacheMs`, whatever the scrape rate (one count per
 * partition is no small query on a large outbox).
 */
export function observePartitions(metrics: OutboxMetrics, ownership: OwnedPartitions, store: Pick<OutboxAdminStore, 'partitionStatus'>, group: string, cacheMs = 5_000): void {
  let cached: { at: number; status: Promise<PartitionStatus[]> } | undefined;
  const status = (): Promise<PartitionStatus[]> => {
    if (cached === undefined || Date.now() - cached.at > cacheMs) cached = { at: Date.now(), status: store.partitionStatus(group) };
    return cached.status;
  };
  const registers = [metrics.registry];
  new Gauge({
    name: 'txoutbox_relay_partitions_held',
    help: "Partitions whose lease this relay holds (partitioned relays: TXOUTBOX_RELAY_PARTITIONED).",
    registers,
    collect() {
      this.set(ownership.partitions().length);
    },
  });
  new Gauge({
    name: 'txoutbox_partition_pending_events',
    help: 'Events still pending in each partition this relay holds.',
    labelNames: ['partition'],
    registers,
    async collect() {
      this.reset();
      const held = new Set(ownership.partitions());
      for (const p of await status()) if (held.has(p.partition)) this.set({ partition: String(p.partition) }, p.pending);
    },
  });
  new Gauge({
    name: 'txoutbox_partition_oldest_pending_age_seconds',
    help: 'Age of the oldest pending event of each partition this relay holds (0 when none): its lag.',
    labelNames: ['partition'],
    registers,
    async collect() {
      this.reset();
      const held = new Set(ownership.partitions());
      for (const p of await status()) {
        if (held.has(p.partition)) this.set({ partition: String(p.partition) }, p.oldestPending === null ? 0 : (Date.now() - p.oldestPending.occurredAt.getTime()) / 1000);
      }
    },
  });
}

/** The sum of a counter's or gauge's samples matching `labels` (for tests and `status --watch`). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((sum, v) => sum + v.value, 0);
}

/** How many observations a histogram holds. */
export async function histogramCount(registry: Registry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!(metric instanceof Histogram)) return 0;
  const { values } = await metric.get();
  return values.filter((v) => v.metricName === `${name}_count`).reduce((sum, v) => sum + v.value, 0);
}
