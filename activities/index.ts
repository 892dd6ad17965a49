import { createPublishEvent, type PublishActivityDeps } from './publish-event';

/** Every activity of the outbox worker, built from its dependencies. */
export function createActivities(deps: PublishActivityDeps) {
  return {
    publishEvent: createPublishEvent(deps),
  };
}

export type OutboxActivities = ReturnType<typeof createActivities>;
export type { PublishActivityDeps } from './publish-event';
