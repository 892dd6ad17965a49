/**
 * `txoutbox/relay`: the relay that starts one Temporal workflow per stored event, and its fast path.
 * Needs the peers `@temporalio/client`, `@temporalio/common`, `@temporalio/workflow` (the relay
 * queries a key's sequencer with the query the workflows define, workflows/signals.ts) and `kafkajs`.
 */
export { createRelay, Relay, type RelayEvents, type RelayOptions, type RunningRelay } from '../relay/relay';
export { FastPath, FAST_PATH_REQUEST_TIMEOUT_MS, type FastPathOptions, type FastPathResult } from '../relay/fast-path';
export { createOutboxProducer } from '../kafka/producer';
export { cachedPartitions } from '../kafka/coalescing-producer';
export { DEFAULT_WORKFLOW_ID_PREFIX, eventWorkflowId, sequencerWorkflowId } from '../relay/start-event-workflow';
export { OutboxMetrics } from '../process/metrics';
export { loadConfig, kafkaClientConfig, temporalConnectionOptions, CONFIG_TEMPLATE, type TxoutboxConfig } from '../process/config';
export { DEFAULT_PUBLISH_POLICY, type PublishPolicy } from '../../workflows/types';
