// activities/: the Temporal activities of the outbox worker, built by factories that take their
// dependencies (store, producer, logger): publishing an event, and escalation with the operator's actions.
import { createEscalationActivities, type EscalationDeps } from './escalation';
import { createPublishEvent, type PublishActivityDeps } from './publish-event';

export type OutboxActivityDeps = PublishActivityDeps & EscalationDeps;

/** Every activity of the outbox worker, built from its dependencies. */
export function createActivities(deps: OutboxActivityDeps) {
  return {
    publishEvent: createPublishEvent(deps),
    ...createEscalationActivities(deps),
  };
}

export type OutboxActivities = ReturnType<typeof createActivities>;
export type { PublishActivityDeps } from './publish-event';
export type { Compensation, EscalationDeps } from './escalation';
