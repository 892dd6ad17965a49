// The outbox's custom search attributes (registered by scripts/infra.sh), defined once for the
// workflow, the relay, the CLI and the tests.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const OutboxSearchAttributes = {
  status: defineSearchAttributeKey('OutboxStatus', SearchAttributeType.KEYWORD),
  eventType: defineSearchAttributeKey('OutboxEventType', SearchAttributeType.KEYWORD),
  aggregateId: defineSearchAttributeKey('OutboxAggregateId', SearchAttributeType.KEYWORD),
  topic: defineSearchAttributeKey('OutboxTopic', SearchAttributeType.KEYWORD),
} as const;
