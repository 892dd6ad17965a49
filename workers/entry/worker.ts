/**
 * `txoutbox/worker`: the Temporal worker that runs the outbox's workflows and publishes to Kafka.
 * Needs the peers `@temporalio/worker`, `@temporalio/workflow`, `@temporalio/activity`,
 * `@temporalio/common`, `@temporalio/interceptors-opentelemetry` and `kafkajs`.
 */
export { startOutboxWorker, OUTBOX_WORKFLOWS_PATH, OTEL_WORKFLOW_INTERCEPTORS, type OutboxWorkerOptions, type RunningWorker } from '../worker/worker';
export { createActivities, type Compensation, type OutboxActivities, type OutboxActivityDeps } from '../../activities';
export { CoalescingProducer, cachedPartitions, type CoalescingProducerOptions } from '../kafka/coalescing-producer';
export { createOutboxProducer } from '../kafka/producer';
export { OutboxMetrics } from '../process/metrics';
export { loadConfig, kafkaClientConfig, temporalConnectionOptions, CONFIG_TEMPLATE, type TxoutboxConfig } from '../process/config';
export { OutboxSearchAttributes } from '../../workflows/search-attributes';
export {
  compensateSignal,
  compensateUpdate,
  discardSignal,
  discardUpdate,
  retrySignal,
  retryUpdate,
  sequencerQuery,
  stateQuery,
  type CompensateRequest,
  type DiscardRequest,
  type EventWorkflowState,
  type SequencerState,
} from '../../workflows/signals';
export type { PublishEventInput, PublishEventOutcome, PublishPolicy, PublishReceipt } from '../../workflows/types';
