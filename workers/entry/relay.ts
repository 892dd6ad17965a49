/**
 * `txoutbox/relay`: the relay that starts one Temporal workflow per stored event, and its fast path.
 * Needs the peers `@temporalio/client`, `@temporalio/common` and `kafkajs`.
 */
export { createRelay, Relay, type RelayEvents, type RelayOptions, type RunningRelay } from '../relay';
export { FastPath, FAST_PATH_REQUEST_TIMEOUT_MS, type FastPathOptions, type FastPathResult } from '../fast-path';
export { createOutboxProducer } from '../kafka-producer';
export { cachedPartitions } from '../coalescing-producer';
export { DEFAULT_WORKFLOW_ID_PREFIX, eventWorkflowId, sequencerWorkflowId } from '../start-event-workflow';
export { OutboxMetrics } from '../metrics';
export { loadConfig, kafkaClientConfig, temporalConnectionOptions, CONFIG_TEMPLATE, type TxoutboxConfig } from '../config';
export { DEFAULT_PUBLISH_POLICY, type PublishPolicy } from '../../workflows/types';
