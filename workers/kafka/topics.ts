import type { Admin, ITopicConfig } from 'kafkajs';

/** How long `createTopicsWithLeaders` waits at most. */
export interface CreateTopicsOptions {
  /**
   * The longest it waits for the topics to be created and each of their partitions to have a leader.
   * @default 60000
   */
  timeoutMs?: number;
  /**
   * How long it waits between two looks at the topics' metadata.
   * @default 200
   */
  intervalMs?: number;
}

/**
 * Creates the topics that do not exist yet and returns once every partition of each has a leader.
 *
 * kafkajs' own `createTopics({ waitForLeaders: true })` asks the controller to create the topics and
 * then reads their metadata, retrying only while it says LEADER_NOT_AVAILABLE. A KRaft broker applies
 * the creation to its metadata cache after the controller answered, so on a busy machine the first
 * read may say UNKNOWN_TOPIC_OR_PARTITION ("This server does not host this topic-partition"), which
 * kafkajs does not retry: the topic is created and the call fails. The cold CI run of 67304a3 met it
 * (the fault harness's lanes, started while six lanes' processes came up), and 4 CPU hogs beside 6
 * concurrent creators make 40% of kafkajs' calls fail so (test/integration/kafka-topics.test.ts).
 * Here both answers mean "not yet", a creation that timed out is looked for and asked again, and a
 * topic that already exists is left as it is.
 */
export async function createTopicsWithLeaders(admin: Admin, topics: ITopicConfig[], options: CreateTopicsOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const intervalMs = options.intervalMs ?? 200;
  const deadline = Date.now() + timeoutMs;
  const names = topics.map((t) => t.topic);
  let lastReason = 'not created yet';
  for (;;) {
    const ready = await leadersOf(admin, names).catch((err: unknown) => {
      if (!isNotYet(err)) throw err;
      lastReason = errorText(err);
      return undefined;
    });
    const waiting = ready === undefined ? names : names.filter((name) => ready.get(name) !== true);
    if (waiting.length === 0) return;
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => waiting.includes(t.topic) && !existing.has(t.topic));
    if (missing.length > 0) {
      await admin.createTopics({ topics: missing, timeout: Math.max(1_000, Math.min(30_000, deadline - Date.now())) }).catch((err: unknown) => {
        if (!isNotYet(err)) throw err;
        lastReason = errorText(err);
      });
    }
    if (Date.now() >= deadline) {
      throw new Error(`Kafka topics ${waiting.join(', ')} have no leader for every partition after ${timeoutMs} ms (${lastReason})`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Whether each topic is known and every partition of it has a leader. */
async function leadersOf(admin: Admin, names: string[]): Promise<Map<string, boolean>> {
  const { topics } = await admin.fetchTopicMetadata({ topics: names });
  return new Map(topics.map((t) => [t.name, t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0)]));
}

/** The broker's answers that mean the creation has not reached it yet (or is still under way). */
const NOT_YET = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'REQUEST_TIMED_OUT', 'TOPIC_ALREADY_EXISTS', 'NOT_CONTROLLER']);

/** Whether `err` (or every error it aggregates, or its cause) is one of NOT_YET. */
function isNotYet(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { type, errors, originalError } = err as { type?: unknown; errors?: unknown; originalError?: unknown };
  if (typeof type === 'string' && NOT_YET.has(type)) return true;
  if (Array.isArray(errors) && errors.length > 0) return errors.every(isNotYet);
  return originalError !== undefined && isNotYet(originalError);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
