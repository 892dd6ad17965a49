/**
 * One lane of the fault harness: a store and a mode (the default mode, the fast path, partitioned
 * relays) with its own database, topic and task queue, its relay and worker processes, its writers,
 * a recorder reading every copy the topic holds, and an inbox consumer applying each event once.
 * The harness runs several lanes side by side under one plan of faults.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { Kafka, logLevel } from 'kafkajs';
import { z } from 'zod';
import { createEventRegistry, createJsonLogger, createOutbox, defineEventType, type Outbox } from '../../domain/outbox';
import { createInboxConsumer, type RunningInboxConsumer } from '../../workers/inbox/consumer';
import { eventWorkflowId } from '../../workers/relay/start-event-workflow';
import { retryUpdate } from '../../workflows/signals';
import { KafkaCollector } from '../support/kafka-collector';
import { pipelineStore, type PipelineStore, type StoreKind } from '../support/pipeline-store';
import { uniqueName, waitFor } from '../support/servers';
import { check, type CheckerCounts } from './checker';
import { ManagedProcess } from './managed-process';
import { createTopicsWithLeaders } from '../../workers/kafka/topics';

const REPO = join(__dirname, '..', '..');
const DATA = process.env.TXOUTBOX_DATA ?? join(REPO, '.data');
/** How long the operator waits for one retry to be carried out, and how many it asks for at once. */
const OPERATOR_UPDATE_DEADLINE_MS = 30_000;
const OPERATOR_CONCURRENCY = 8;

export interface LaneSpec {
  store: StoreKind;
  /** The relay publishes both event types itself (issue 8's mode). */
  fastPath: boolean;
  /** More than one: partitioned relays (issue 17) sharing the partitions by leases of 5 s. */
  relays: number;
}

export function laneName(spec: LaneSpec): string {
  return `${spec.store}/${spec.fastPath ? 'fast-path' : 'default'}${spec.relays > 1 ? `/${spec.relays}-relays` : ''}`;
}

/** What every lane shares: the settings of its processes. */
export interface LaneSettings {
  /** Where the harness reaches Kafka (its recorder, inbox consumer and admin). */
  kafkaBrokers: string[];
  /** Where the relay and worker processes reach Kafka (the harness's delaying proxy, or the cluster). */
  processBrokers: string;
  /** The Temporal frontend of the processes and of the harness's operator (the dev server, or the Temporal server). */
  temporalAddress: string;
  /** Extra TXOUTBOX_* settings of the relays and workers (publish timeout, sequencer buffer, ...). */
  processEnv: Record<string, string>;
  log: (line: string) => void;
}

export interface LaneVerdict extends CheckerCounts {
  lane: string;
  ok: boolean;
  writeErrors: number;
  /** Stuck events the harness's operator retried (after a topic was created again, and after the faults). */
  operatorRetries: number;
  longestStallKey: string | null;
  line: string;
}

class AbortedOnPurpose extends Error {}

export class Lane {
  readonly name: string;
  readonly db: PipelineStore;
  readonly topic = uniqueName('faults');
  readonly taskQueue = uniqueName('faults');
  readonly logDir: string;
  readonly relays: ManagedProcess[];
  readonly relayTriggers: string[];
  readonly worker: ManagedProcess;
  readonly workerTrigger: string;
  /** What the writers were told. */
  readonly committed = new Map<string, { key: string; ordered: boolean }>();
  readonly aborted = new Set<string>();
  readonly uncertain = new Map<string, { key: string; ordered: boolean }>();
  writeErrors = 0;
  /** Callback runs the store's driver made again after a transient error; their events are uncertain. */
  rerunWrites = 0;
  operatorRetries = 0;
  /** When its topic was deleted (to be created again), oldest first, and since when events may have gone unread (the recorder read to the end offsets of that moment). */
  readonly deletions: Array<{ readTo: number; at: number }> = [];
  private readonly outbox: Outbox<unknown>;
  private readonly kafka: Kafka;
  private readonly recorder: KafkaCollector;
  private inbox: RunningInboxConsumer | undefined;

  constructor(
    readonly spec: LaneSpec,
    private readonly settings: LaneSettings,
  ) {
    this.name = laneName(spec);
    this.db = pipelineStore(spec.store);
    this.logDir = join(DATA, 'logs', this.topic);
    mkdirSync(this.logDir, { recursive: true });
    const registry = createEventRegistry([
      defineEventType({ type: 'faults.Deposited', schemaVersion: 1, aggregateType: 'account', topic: this.topic, schema: z.object({ account: z.string(), n: z.number().int() }) }),
      defineEventType({
        type: 'faults.LineAdded',
        schemaVersion: 1,
        aggregateType: 'account',
        topic: this.topic,
        ordering: 'per-key',
        schema: z.object({ account: z.string(), n: z.number().int() }),
      }),
    ]);
    this.outbox = createOutbox({ store: this.db.store, registry, source: 'txoutbox-faults' });
    this.kafka = new Kafka({ clientId: 'txoutbox-faults', brokers: settings.kafkaBrokers, logLevel: logLevel.NOTHING, retry: { retries: 20, maxRetryTime: 5_000 } });
    this.recorder = new KafkaCollector(this.kafka, this.topic);
    const preload = `${process.env.NODE_OPTIONS ?? ''} --require ${join(__dirname, 'kill-after-ack.js')}`.trim();
    const env = {
      ...this.db.env,
      TXOUTBOX_TASK_QUEUE: this.taskQueue,
      TXOUTBOX_TEMPORAL_ADDRESS: settings.temporalAddress,
      TXOUTBOX_KAFKA_BROKERS: settings.processBrokers,
      TXOUTBOX_LOG_LEVEL: 'info',
      TXOUTBOX_HEALTH_PORT: '0',
      ...settings.processEnv,
      ...(spec.fastPath ? { TXOUTBOX_FAST_PATH_TYPES: 'faults.Deposited,faults.LineAdded' } : {}),
    };
    const partitioned = spec.relays === 1 ? {} : { TXOUTBOX_RELAY_PARTITIONED: 'true', TXOUTBOX_RELAY_LEASE_MS: '5000' };
    this.relayTriggers = Array.from({ length: spec.relays }, (_, i) => join(this.logDir, spec.relays === 1 ? 'kill-relay-after-ack' : `kill-relay-${i + 1}-after-ack`));
    this.relays = this.relayTriggers.map(
      (file, i) =>
        new ManagedProcess(
          'relay',
          { ...env, ...partitioned, ...(spec.relays === 1 ? {} : { TXOUTBOX_RELAY_MEMBER: `relay-${i + 1}` }), TXOUTBOX_FAULT_KILL_AFTER_ACK_FILE: file, NODE_OPTIONS: preload },
          join(this.logDir, spec.relays === 1 ? 'relay.log' : `relay-${i + 1}.log`),
        ),
    );
    this.workerTrigger = join(this.logDir, 'kill-worker-after-ack');
    this.worker = new ManagedProcess('worker', { ...env, TXOUTBOX_FAULT_KILL_AFTER_ACK_FILE: this.workerTrigger, NODE_OPTIONS: preload }, join(this.logDir, 'worker.log'));
  }

  async start(): Promise<void> {
    await this.db.setup();
    const admin = this.kafka.admin();
    await admin.connect();
    await createTopicsWithLeaders(admin, [{ topic: this.topic, numPartitions: 3 }]);
    await admin.disconnect();
    await this.recorder.start();
    await this.startInbox();
    await Promise.all([...this.relays.map((r) => r.start()), this.worker.start()]);
    this.settings.log(`lane ${this.name}: ${this.db.location}, topic ${this.topic}, task queue ${this.taskQueue}; process logs in ${this.logDir}`);
  }

  /** The inbox consumer: its effect is a row per application, so applying twice would show. */
  private async startInbox(): Promise<void> {
    this.inbox = await createInboxConsumer({
      kafka: this.kafka,
      groupId: `${this.topic}-inbox`,
      topics: [this.topic],
      inbox: this.db.inbox,
      fromBeginning: true,
      logger: createJsonLogger('info', (line) => appendFileSync(join(this.logDir, 'inbox.log'), `${line}\n`)),
      handle: async (event, tx) => {
        await this.db.recordEffect(tx, event.id, '');
      },
    }).start();
  }

  /**
   * One write transaction: the event of `key`, ordered or not, aborted on purpose or committed.
   * Every run of the callback counts: MongoDB's withTransaction runs it again after a
   * TransientTransactionError, and SecantusDB, which forgets committed transactions when it
   * restarts, answers the retried commit of one that landed with NoSuchTransaction (transient), so
   * an earlier run's event may be stored too. Those are uncertain, as a failed write's is.
   */
  async write(n: number, key: string, ordered: boolean, abort: boolean): Promise<void> {
    const ids: string[] = [];
    try {
      await this.db.inTransaction(async (tx) => {
        const event = await this.outbox.add({ type: ordered ? 'faults.LineAdded' : 'faults.Deposited', aggregateId: key, payload: { account: key, n } }, tx);
        ids.push(event.id);
        if (abort) throw new AbortedOnPurpose('aborted after outbox.add()');
      });
      const last = ids.pop();
      if (last !== undefined) this.committed.set(last, { key, ordered });
      this.rerunWrites += ids.length;
      for (const earlier of ids) this.uncertain.set(earlier, { key, ordered });
    } catch (err) {
      if (err instanceof AbortedOnPurpose) for (const id of ids) this.aborted.add(id);
      else {
        this.writeErrors += 1;
        for (const id of ids) this.uncertain.set(id, { key, ordered });
      }
    }
  }

  /**
   * Deletes the topic and creates it again, with its events still being written and published: the
   * recorder reads to the topic's end first (what it then misses went with the deletion), and from
   * then on reads the topic's new life.
   */
  async recreateTopic(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      // The recorder has read every event published before the end offsets were asked for (an event
      // is marked published after Kafka's acknowledgement); after a Kafka outage its consumer may take
      // half a minute to rejoin, so it gets as long as the final read.
      const deletion = await this.recorder.recreateTopic(admin, () => createTopicsWithLeaders(admin, [{ topic: this.topic, numPartitions: 3 }]), {
        timeoutMs: 120_000,
        // Not read to its end: no event unread counts as destroyed (an unread one counts as lost).
        onUnread: (err) => this.settings.log(`lane ${this.name}: the recorder did not read the topic to its end before its deletion: ${String(err)}`),
      });
      this.deletions.push(deletion);
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * The operator: retries the stuck events whose error matches (after a topic was created again:
   * those that escalated while it did not exist; after the faults: every one, since the harness
   * writes no event that can never be published). A retry of an event Kafka has is a duplicate with
   * its id at worst; nothing is compensated or discarded.
   */
  async retryStuck(lastError: RegExp = /./): Promise<void> {
    const started = Date.now();
    // Right after a store restart the first queries on the harness's pooled connections fail
    // ("terminating connection due to administrator command", "socket ended"): the operator asks again.
    const listed = await waitFor(() => this.db.store.list({ status: 'stuck', limit: 1_000 }), { timeoutMs: 30_000, intervalMs: 1_000, what: `the stuck events of lane ${this.name}` }).catch(
      (err: unknown) => {
        this.settings.log(`lane ${this.name}: the operator could not list the stuck events, and tries again after the next fault: ${String(err)}`);
        return [];
      },
    );
    const stuck = listed.filter((e) => lastError.test(e.lastError ?? ''));
    if (stuck.length === 0) return;
    const connection = await Connection.connect({ address: this.settings.temporalAddress });
    let retried = 0;
    let unanswered = 0;
    try {
      const client = new Client({ connection });
      // As the CLI does: each update within a deadline (a workflow whose worker is down, or whose
      // reopen waits for the store, must not hold the operator, and with it the harness, for good);
      // what is not carried out is retried on the next round.
      const retryOne = async (eventId: string): Promise<void> => {
        const outcome = await connection
          .withDeadline(Date.now() + OPERATOR_UPDATE_DEADLINE_MS, () => client.workflow.getHandle(eventWorkflowId(eventId)).executeUpdate(retryUpdate))
          .then(
            () => 'retried' as const,
            (err: unknown) => (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError || (err as { code?: unknown }).code === 4 ? ('unanswered' as const) : ('refused' as const)),
          );
        if (outcome === 'retried') retried += 1;
        if (outcome === 'unanswered') unanswered += 1;
      };
      const queue = stuck.map((e) => e.id);
      await Promise.all(
        Array.from({ length: Math.min(OPERATOR_CONCURRENCY, queue.length) }, async () => {
          for (let id = queue.shift(); id !== undefined; id = queue.shift()) await retryOne(id);
        }),
      );
    } finally {
      await connection.close();
    }
    this.operatorRetries += retried;
    if (unanswered > 0 || Date.now() - started > 10_000) {
      this.settings.log(`lane ${this.name}: the operator retried ${retried} of ${stuck.length} stuck (${unanswered} not answered within ${OPERATOR_UPDATE_DEADLINE_MS / 1000} s) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }
  }

  /** Every process running (a kill at the very end may have left one down). */
  async ensureRunning(): Promise<void> {
    for (const relay of this.relays) if (!relay.alive) await relay.start();
    if (!this.worker.alive) await this.worker.start();
  }

  /** Waits until no event is pending or stuck (the operator retrying what the faults made stuck), or the timeout. */
  async drain(timeoutMs: number): Promise<void> {
    await waitFor(
      async () => {
        await this.retryStuck();
        const { counts } = await this.db.store.stats();
        return counts.pending === 0 && counts.stuck === 0;
      },
      { timeoutMs, intervalMs: 2_000, what: `every event of lane ${this.name} published or stuck` },
    ).catch((err: unknown) => this.settings.log(`lane ${this.name}: drain incomplete: ${String(err)}`));
  }

  /** The independent checker's verdict: the topic read to its end, the store, the inbox. */
  async verdict(seed: number, t0: number): Promise<LaneVerdict> {
    const seconds = Math.round((Date.now() - t0) / 1000);
    const admin = this.kafka.admin();
    await admin.connect();
    await this.recorder.waitForEnd(admin, 120_000).catch((err: unknown) => this.settings.log(`lane ${this.name}: the recorder did not reach the topic's end: ${String(err)}`));
    await admin.disconnect();
    const stored = await this.db.auditRows();
    const storedIds = new Set(stored.map((r) => r.id));
    const committed = new Map(this.committed);
    for (const [id, info] of this.uncertain) if (storedIds.has(id)) committed.set(id, info);
    const messages = this.recorder.messages.map((m) => ({ incarnation: m.incarnation, partition: m.partition, offset: Number(m.offset), key: m.key ?? '', id: m.cloudEvent.id }));
    const seen = new Set(messages.map((m) => m.id));
    const countEffects = async (): Promise<Map<string, number>> => new Map((await this.db.effectCounts()).map((r) => [r.eventId, r.n]));
    // The inbox catches up with every copy in the topic's current life.
    const current = new Set(this.recorder.messages.filter((m) => m.incarnation === this.deletions.length).map((m) => m.cloudEvent.id));
    const effects = await waitFor(
      async () => {
        const counted = await countEffects();
        return [...current].every((id) => counted.has(id)) ? counted : false;
      },
      { timeoutMs: 180_000, intervalMs: 1_000, what: `the inbox of lane ${this.name} to apply every event in the topic` },
    ).catch(async (err: unknown) => {
      this.settings.log(`lane ${this.name}: inbox incomplete: ${String(err)}`);
      return countEffects();
    });
    const result = check({ committed, toldCommitted: new Set(this.committed.keys()), aborted: this.aborted, stored, messages, effects, deletions: this.deletions });
    const c = result.counts;
    const ok =
      c.lost === 0 && c.invented === 0 && c.abortedLeaked === 0 && c.missingInStore === 0 && c.orderViolations === 0 && c.unresolved === 0 && c.inboxWrong === 0 && c.committed > 0;
    const line =
      `verdict: ${ok ? 'PASS' : 'FAIL'} store=${this.spec.store} mode=${this.spec.fastPath ? 'fast-path' : 'default'} relays=${this.spec.relays} seed=${seed} committed=${c.committed} published=${c.published} ` +
      `stuck=${c.stuck} duplicates=${c.duplicates} lost=${c.lost} lost-with-topic=${c.lostWithTopic} invented=${c.invented} ` +
      `aborted=${c.aborted} aborted-leaked=${c.abortedLeaked} missing-in-store=${c.missingInStore} ` +
      `order-violations=${c.orderViolations} unresolved=${c.unresolved} inbox-once=${c.inboxApplied} inbox-wrong=${c.inboxWrong} ` +
      `longest-key-stall=${(c.longestStallMs / 1000).toFixed(1)}s(${result.longestStallKey ?? '-'} from ${result.longestStallFrom === null ? '-' : `${((result.longestStallFrom - t0) / 1000).toFixed(0)}s`}) operator-retries=${this.operatorRetries} ` +
      `write-errors=${this.writeErrors} rerun-writes=${this.rerunWrites} messages=${c.messages} seen=${seen.size} seconds=${seconds}`;
    for (const violation of result.violations) this.settings.log(`lane ${this.name}: ${violation}`);
    if (result.lostIds.length > 0) this.settings.log(`lane ${this.name}: lost: ${result.lostIds.slice(0, 20).join(' ')}`);
    if (result.unresolvedIds.length > 0) this.settings.log(`lane ${this.name}: unresolved: ${result.unresolvedIds.slice(0, 20).join(' ')}`);
    return { ...c, lane: this.name, ok, writeErrors: this.writeErrors, operatorRetries: this.operatorRetries, longestStallKey: result.longestStallKey, line };
  }

  /** Stops its processes and consumers, ends the workflows still waiting; drops its data when it passed. */
  async cleanup(keep: boolean): Promise<void> {
    await Promise.all([...this.relays.map((r) => r.stop()), this.worker.stop()]);
    await this.inbox?.shutdown();
    await this.recorder.stop();
    const connection = await Connection.connect({ address: this.settings.temporalAddress });
    const client = new Client({ connection });
    for await (const wf of client.workflow.list({ query: `TaskQueue = '${this.taskQueue}' AND ExecutionStatus = 'Running'` })) {
      await client.workflow.getHandle(wf.workflowId, wf.runId).terminate('fault harness finished').catch(() => undefined);
    }
    await connection.close();
    if (keep) {
      this.settings.log(`lane ${this.name}: kept for inspection: ${this.db.location}, topic ${this.topic}, logs ${this.logDir}`);
      await this.db.close();
      return;
    }
    await this.db.teardown();
    const admin = this.kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [this.topic] }).catch(() => undefined);
    await admin.disconnect();
  }

  /** Its topic's partitions: leader and in-sync replicas of each (the cluster faults aim at them). */
  async partitions(): Promise<Array<{ partition: number; leader: number; replicas: number[]; isr: number[] }>> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [this.topic] });
      return (topics[0]?.partitions ?? []).map((p) => ({ partition: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr }));
    } finally {
      await admin.disconnect();
    }
  }

  /** A relay of this lane: one of them, chosen by `random` (no draw with one relay, so a seed replays as before). */
  pickRelay(random: () => number): [ManagedProcess, string] {
    const i = this.relays.length === 1 ? 0 : Math.floor(random() * this.relays.length);
    return [this.relays[i] as ManagedProcess, this.relayTriggers[i] as string];
  }
}
