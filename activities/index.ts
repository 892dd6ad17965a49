// activities/: the Temporal activities of the outbox worker, built by factories that take their
// dependencies (store, producer, logger): publishing an event, and escalation with the operator's actions.
import { createEscalationActivities, type EscalationDeps } from './escalation';
import { createPublishEvent, type PublishActivityDeps } from './publish-event';
import { createPublishRun, type PublishRunDeps } from './publish-run';

export type OutboxActivityDeps = PublishActivityDeps & EscalationDeps & PublishRunDeps;

/** Every activity of the outbox worker, built from its dependencies. */
export function createActivities(deps: OutboxActivityDeps) {
  return {
    publishEvent: createPublishEvent(deps),
    publishRun: createPublishRun(deps),
    ...createEscalationActivities(deps),
  };
}

export type OutboxActivities = ReturnType<typeof createActivities>;
export type { PublishActivityDeps } from './publish-event';
export type { PublishRunDeps, RunResult } from './publish-run';
export type { Compensation, EscalationDeps } from './escalation';
