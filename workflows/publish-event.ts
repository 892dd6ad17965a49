import { log, proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { OutboxActivities } from '../activities';
import { OutboxSearchAttributes } from './search-attributes';
import type { PublishEventInput, PublishReceipt } from './types';

/**
 * One event, one workflow (id `outbox-<eventId>`): publish it to Kafka under the given retry
 * policy, then mark it `published` in its search attributes.
 */
export async function publishEventWorkflow(input: PublishEventInput): Promise<PublishReceipt> {
  const { policy } = input;
  const { publishEvent } = proxyActivities<OutboxActivities>({
    startToCloseTimeout: policy.startToCloseTimeoutMs,
    retry: {
      initialInterval: policy.initialIntervalMs,
      backoffCoefficient: policy.backoffCoefficient,
      maximumInterval: policy.maximumIntervalMs,
      // 0 means no limit, which the SDK expresses by leaving the field out.
      ...(policy.maximumAttempts > 0 ? { maximumAttempts: policy.maximumAttempts } : {}),
      nonRetryableErrorTypes: ['EVENT_NOT_FOUND'],
    },
  });
  const receipt = await publishEvent(input.eventId);
  upsertSearchAttributes([{ key: OutboxSearchAttributes.status, value: 'published' }]);
  log.info('event published', {
    eventId: receipt.eventId,
    topic: receipt.topic,
    partition: receipt.partition,
    offset: receipt.offset,
    alreadyPublished: receipt.alreadyPublished,
  });
  return receipt;
}
