/**
 * The relay's options, their defaults and their checks (a bad one is refused at construction with
 * INVALID_CONFIG); the events it emits and the handle `start()` returns.
 */
import type { WorkflowClient } from '@temporalio/client';
import { OutboxError, OutboxErrorCode, silentLogger, type FeedGap, type Logger, type OutboxRelayStore } from '../../domain/outbox';
import { DEFAULT_PUBLISH_POLICY, DEFAULT_SEQUENCER_BUFFER_LIMIT, DEFAULT_SEQUENCER_RUN_LIMIT, type PublishPolicy } from '../../workflows/types';
import type { OutboxMetrics } from '../process/metrics';
import type { FastPath } from './fast-path';
import { DEFAULT_WORKFLOW_ID_PREFIX } from './start-event-workflow';

export interface RelayOptions {
  /** The outbox store (any adapter): what the relay needs of it. */
  store: OutboxRelayStore;
  /** Temporal workflow client (`client.workflow`). */
  workflowClient: WorkflowClient;
  /** Task queue of the outbox worker. */
  taskQueue: string;
  /** Checkpoint name; relays sharing it share a position. @default "relay" */
  name?: string;
  /** Most workflow starts in flight at once. @default 16 */
  startConcurrency?: number;
  /** Most events a key's sequencer keeps behind the one it holds, for sequencers this relay starts. @default 500 */
  sequencerBufferLimit?: number;
  /**
   * Most events of a key its sequencer publishes in one run, for sequencers this relay starts; 1: no
   * runs, every event through its own workflow one at a time (slower on a busy key). @default 100
   */
  sequencerRunLimit?: number;
  /** Most events read from the feed per batch. @default 100 */
  batchSize?: number;
  /** Longest wait for new events before an empty batch, in ms. @default 1000 */
  maxWaitMs?: number;
  /** Wait before the feed is reopened after an error, in ms. @default 1000 */
  retryDelayMs?: number;
  /**
   * Shortest time between two saves of the feed's position, in ms: a dispatched batch's position is
   * saved at once when the last save is this old, and otherwise with a later batch's (an idle feed
   * yields an empty one every `maxWaitMs`) or when the relay stops. A relay that dies re-reads about
   * this much of the feed at most (the starts are refused as duplicates, the fast claims of
   * published events fail). 0: after every batch. @default 1000
   */
  checkpointEveryMs?: number;
  /**
   * How often the sweeper looks for events still pending, in ms. The sweeper cannot be turned off:
   * it is what publishes events the feed skipped (a gap, claims given back after the feed passed them).
   * @default 30000
   */
  sweepIntervalMs?: number;
  /** How old a pending event must be before the sweeper starts it, in ms. @default 10000 */
  sweepGraceMs?: number;
  /** Most events the sweeper reads per page. @default 500 */
  sweepBatchSize?: number;
  /** Retry policy and timeouts given to each publish workflow. @default DEFAULT_PUBLISH_POLICY */
  publishPolicy?: Partial<PublishPolicy>;
  /** @default "outbox-" */
  workflowIdPrefix?: string;
  /**
   * Eager workflow start: the workflow's first task comes back with the start's reply and runs on
   * the worker of this process. Needs `workflowClient` built on the NativeConnection that
   * `startOutboxWorker({ connection })` also uses, on the same task queue. @default false
   */
  eagerStart?: boolean;
  logger?: Logger;
  /** Prometheus metrics to count into; none by default. */
  metrics?: OutboxMetrics;
  /** @default Date.now */
  now?: () => number;
  /** The fast path (opt-in): eligible events are published by the relay itself; failures become workflows. */
  fastPath?: FastPath;
  /**
   * Partitioned reading (issue 17, opt-in): the relays sharing `name` share the outbox's partitions
   * through leases in the store; this one reads, sweeps, publishes and saves positions only for the
   * partitions it holds. Without it every relay of a name reads every event (the starts of all but
   * one are refused as duplicates).
   */
  partitions?: { leaseMs?: number; member?: string };
}

/** Named events a test (or a metrics exporter) can await instead of sleeping. */

export type ResolvedRelayOptions = Required<Omit<RelayOptions, 'publishPolicy' | 'metrics' | 'fastPath' | 'partitions'>> & {
  publishPolicy: PublishPolicy;
  metrics: OutboxMetrics | undefined;
  fastPath: FastPath | undefined;
};

export function applyRelayDefaults(options: RelayOptions): ResolvedRelayOptions {
  const resolved = {
    store: options.store,
    workflowClient: options.workflowClient,
    taskQueue: options.taskQueue,
    name: options.name ?? 'relay',
    startConcurrency: options.startConcurrency ?? 16,
    sequencerBufferLimit: options.sequencerBufferLimit ?? DEFAULT_SEQUENCER_BUFFER_LIMIT,
    sequencerRunLimit: options.sequencerRunLimit ?? DEFAULT_SEQUENCER_RUN_LIMIT,
    batchSize: options.batchSize ?? 100,
    maxWaitMs: options.maxWaitMs ?? 1000,
    retryDelayMs: options.retryDelayMs ?? 1000,
    checkpointEveryMs: options.checkpointEveryMs ?? 1000,
    sweepIntervalMs: options.sweepIntervalMs ?? 30_000,
    sweepGraceMs: options.sweepGraceMs ?? 10_000,
    sweepBatchSize: options.sweepBatchSize ?? 500,
    publishPolicy: { ...DEFAULT_PUBLISH_POLICY, ...options.publishPolicy },
    workflowIdPrefix: options.workflowIdPrefix ?? DEFAULT_WORKFLOW_ID_PREFIX,
    eagerStart: options.eagerStart ?? false,
    logger: options.logger ?? silentLogger,
    metrics: options.metrics,
    now: options.now ?? Date.now,
    fastPath: options.fastPath,
  };

  if (typeof resolved.taskQueue !== 'string' || resolved.taskQueue.length === 0) {
    throw new OutboxError(OutboxErrorCode.invalidConfig, 'relay option "taskQueue" must be a non-empty string');
  }
  for (const key of ['startConcurrency', 'batchSize', 'maxWaitMs', 'sweepBatchSize', 'sweepIntervalMs', 'sequencerBufferLimit', 'sequencerRunLimit'] as const) {
    if (!Number.isSafeInteger(resolved[key]) || resolved[key] < 1) {
      throw new OutboxError(OutboxErrorCode.invalidConfig, `relay option "${key}" must be a positive integer, got ${String(resolved[key])}`);
    }
  }
  for (const key of ['retryDelayMs', 'sweepGraceMs', 'checkpointEveryMs'] as const) {
    if (!Number.isSafeInteger(resolved[key]) || resolved[key] < 0) {
      throw new OutboxError(OutboxErrorCode.invalidConfig, `relay option "${key}" must be a non-negative integer, got ${String(resolved[key])}`);
    }
  }
  return resolved;
}

export interface RelayEvents {
  /** The feed is open and positioned (also emitted, once per opening, after a failure to open). */
  ready: [];
  /** A feed batch whose starts were all acknowledged. */
  batch: [{ events: number; started: number; duplicates: number }];
  /** The feed position was saved: after the batches dispatched since the last save, holding `events`. */
  checkpoint: [{ events: number }];
  /** A sweep finished. */
  sweep: [{ found: number; started: number; duplicates: number }];
  /** The feed may have skipped events (no checkpoint, lost history): a sweep follows. */
  gap: [FeedGap];
  /** A feed batch's fast-path events: published by the relay, handed to workflows, or owned elsewhere. */
  fast: [{ published: number; fallback: number; skipped: number }];
  /** An error the relay recovers from by reopening the feed. */
  error: [unknown];
  /** Partitioned: the partitions this relay reads from now on. */
  partitions: [readonly number[]];
}

export interface RunningRelay {
  /** Stops reading, lets in-flight starts finish and saves their checkpoint, then resolves. */
  shutdown(): Promise<void>;
}
