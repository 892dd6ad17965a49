/**
 * The fault harness: steady load through the public API (outbox.add in MongoDB or PostgreSQL
 * transactions, some aborted after add) while, at seeded random points, the relay or worker is killed
 * with SIGKILL (the worker also right after Kafka acknowledged a send), the Kafka broker is restarted
 * or frozen (SIGSTOP) for longer than the producer's timeouts, and the Temporal dev server and the
 * store's server (MongoDB or PostgreSQL) are restarted. The relay and worker run as their real processes (workers/bin).
 *
 * At the end an independent reader consumes the whole topic with a consumer group of its own and
 * compares it with the store and with what the writers were told: every committed event present,
 * nothing of an aborted transaction, every duplicate an already-seen event id, per-key order kept
 * for the ordered event type, every event `published` or `stuck` with a reason, and an inbox
 * consumer that applied each event exactly once.
 *
 * Run in the suite by test/faults/faults.test.ts (CI-sized) and alone by `npm run faults` (soak).
 * It needs the servers scripts/infra.sh started (it stops and restarts them through that script).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { binArgs } from '../support/processes';
import { Client, Connection } from '@temporalio/client';
import { Kafka, logLevel } from 'kafkajs';
import { z } from 'zod';
import { createEventRegistry, createJsonLogger, createOutbox, defineEventType } from '../../domain/outbox';
import { createInboxConsumer, type RunningInboxConsumer } from '../../workers/inbox-consumer';
import { infra, infraPid } from '../support/infra-control';
import { pipelineStore, StoreKind } from '../support/pipeline-store';
import { seeded } from '../support/seeded';
import { testServers, uniqueName, waitFor } from '../support/servers';

const REPO = join(__dirname, '..', '..');
const DATA = process.env.TXOUTBOX_DATA ?? join(REPO, '.data');

export const FAULT_KINDS = [
  'kill-relay',
  'kill-worker',
  'kill-worker-after-ack',
  'kill-relay-after-ack',
  'kafka-restart',
  'kafka-hang',
  'temporal-restart',
  'store-restart',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface HarnessOptions {
  seed: number;
  /** How long the load runs, in ms; the faults fall within it. */
  durationMs: number;
  /** How many faults to inject (each kind at least once when there are at least as many as kinds). */
  faults: number;
  /** Write transactions started per second. @default 4 */
  ratePerSecond?: number;
  /** Keys (aggregate ids) the events are spread over. @default 8 */
  keys?: number;
  /** Share of transactions that abort after outbox.add(). @default 0.1 */
  abortShare?: number;
  /** Run the relay with the fast path for both event types (issue 8's mode). @default false */
  fastPath?: boolean;
  /** The store the load writes to and the relay and worker read. @default "mongodb" */
  store?: StoreKind;
  /**
   * Relays: more than one run partitioned (issue 17), sharing the partitions by leases of 5 s; a
   * relay fault then hits one of them, chosen by the seed. @default 1
   */
  relays?: number;
  /** Longest wait for every event to settle after the load, in ms. @default 600000 */
  drainTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface Verdict {
  ok: boolean;
  seed: number;
  faults: Array<{ atMs: number; kind: FaultKind; tookMs: number }>;
  committed: number;
  aborted: number;
  /** Transactions whose commit failed with an error (a server restart): their events count if the store has them. */
  writeErrors: number;
  published: number;
  stuck: number;
  messages: number;
  duplicates: number;
  /** Committed events neither in Kafka nor stuck, or recorded at a Kafka position that holds another message. */
  lost: number;
  /** Messages whose event id no writer committed. */
  invented: number;
  /** Events of aborted transactions found in the store or in Kafka. */
  abortedLeaked: number;
  /** Committed events whose row the store does not have (a commit that said yes but did not persist). */
  missingInStore: number;
  /** Ordered events that reached Kafka before an earlier event of their key. */
  orderViolations: number;
  /** Events neither published nor stuck with a reason after the drain. */
  unresolved: number;
  /** Events the inbox consumer applied exactly once / not exactly once. */
  inboxApplied: number;
  inboxWrong: number;
  seconds: number;
  line: string;
}

class AbortedOnPurpose extends Error {}

/** A relay or worker process (workers/bin), restartable, killable. */
class ManagedProcess {
  private child: ChildProcess | undefined;
  private exit: Promise<void> = Promise.resolve();
  starts = 0;

  constructor(
    readonly role: 'relay' | 'worker',
    private readonly env: NodeJS.ProcessEnv,
    private readonly logFile: string,
  ) {}

  async start(): Promise<void> {
    const log = createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(process.execPath, binArgs(this.role), {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.starts += 1;
    this.exit = new Promise((resolve) => child.once('exit', () => resolve()));
    let port: number | undefined;
    child.stdout?.pipe(log, { end: false });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      log.write(chunk);
      for (const line of chunk.split('\n')) {
        const match = line.includes('health endpoints listening') ? /"port":(\d+)/.exec(line) : null;
        if (match) port = Number(match[1]);
      }
    });
    let exited = false;
    void this.exit.then(() => (exited = true));
    await waitFor(
      async () => {
        if (exited) throw new Error(`${this.role} exited during start-up (log: ${this.logFile})`);
        if (port === undefined) return false;
        return fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
      },
      { timeoutMs: 120_000, intervalMs: 200, what: `${this.role} ready (log: ${this.logFile})` },
    ).catch((err: unknown) => {
      if (exited) throw new Error(`${this.role} exited during start-up; its log ${this.logFile} ends:\n${tail(this.logFile)}`);
      throw err;
    });
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill9(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exit;
  }

  /** Resolves when the process ends on its own (or rejects after `timeoutMs`). */
  async exited(timeoutMs: number): Promise<void> {
    await Promise.race([this.exit, new Promise((_, reject) => setTimeout(() => reject(new Error(`${this.role} did not exit within ${timeoutMs} ms`)), timeoutMs))]);
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child?.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 30_000);
    await this.exit;
    clearTimeout(timer);
  }
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function runFaultHarness(options: HarnessOptions): Promise<Verdict> {
  const log = options.log ?? ((line: string) => process.stderr.write(`[faults] ${line}\n`));
  const rate = options.ratePerSecond ?? 4;
  const keys = options.keys ?? 8;
  const abortShare = options.abortShare ?? 0.1;
  const random = seeded(options.seed);
  const servers = testServers();
  const storeKind = options.store ?? StoreKind.mongodb;
  for (const service of ['kafka', 'temporal', storeKind] as const) infraPid(service);

  const db = pipelineStore(storeKind);
  await db.setup();
  const { store, inbox } = db;
  const topic = uniqueName('faults');
  const taskQueue = uniqueName('faults');
  const logDir = join(DATA, 'logs', topic);
  mkdirSync(logDir, { recursive: true });
  log(`store ${storeKind}; ${options.fastPath ? 'fast path; ' : ''}${(options.relays ?? 1) > 1 ? `${options.relays} partitioned relays; ` : ''}seed ${options.seed}; ${db.location}, topic ${topic}; process logs in ${logDir}`);
  const registry = createEventRegistry([
    defineEventType({ type: 'faults.Deposited', schemaVersion: 1, aggregateType: 'account', topic, schema: z.object({ account: z.string(), n: z.number().int() }) }),
    defineEventType({
      type: 'faults.LineAdded',
      schemaVersion: 1,
      aggregateType: 'account',
      topic,
      ordering: 'per-key',
      schema: z.object({ account: z.string(), n: z.number().int() }),
    }),
  ]);
  const outbox = createOutbox({ store, registry, source: 'txoutbox-faults' });

  const kafka = new Kafka({ clientId: 'txoutbox-faults', brokers: servers.kafkaBrokers, logLevel: logLevel.NOTHING, retry: { retries: 20, maxRetryTime: 5_000 } });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  await admin.disconnect();

  // The inbox consumer: its effect is a row per application, so applying twice would show.
  let inboxConsumer: RunningInboxConsumer | undefined;
  const startInbox = async (): Promise<void> => {
    inboxConsumer = await createInboxConsumer({
      kafka,
      groupId: `${topic}-inbox`,
      topics: [topic],
      inbox,
      fromBeginning: true,
      logger: createJsonLogger('info', (line) => appendFileSync(join(logDir, 'inbox.log'), `${line}\n`)),
      handle: async (event, tx) => {
        await db.recordEffect(tx, event.id, '');
      },
    }).start();
  };
  await startInbox();

  const trigger = join(logDir, 'kill-worker-after-ack');
  const relayCount = options.relays ?? 1;
  const relayTriggers = Array.from({ length: relayCount }, (_, i) => join(logDir, relayCount === 1 ? 'kill-relay-after-ack' : `kill-relay-${i + 1}-after-ack`));
  const preload = `${process.env.NODE_OPTIONS ?? ''} --require ${join(__dirname, 'kill-after-ack.js')}`.trim();
  const env = {
    ...db.env,
    TXOUTBOX_TASK_QUEUE: taskQueue,
    TXOUTBOX_TEMPORAL_ADDRESS: servers.temporalAddress,
    TXOUTBOX_KAFKA_BROKERS: servers.kafkaBrokers.join(','),
    TXOUTBOX_LOG_LEVEL: 'info',
    TXOUTBOX_HEALTH_PORT: '0',
    // Shorter than every Kafka freeze (12-22 s): a hang outlasts the client's requests, with concurrent
    // publishes to one partition, where kafkajs' idempotent producer once acknowledged an event with
    // another event's offset (issue 15, test/integration/kafka-producer.test.ts).
    TXOUTBOX_KAFKA_REQUEST_TIMEOUT_MS: '5000',
    ...(options.fastPath ? { TXOUTBOX_FAST_PATH_TYPES: 'faults.Deposited,faults.LineAdded' } : {}),
  };
  const partitioned = relayCount === 1 ? {} : { TXOUTBOX_RELAY_PARTITIONED: 'true', TXOUTBOX_RELAY_LEASE_MS: '5000' };
  const relays = relayTriggers.map(
    (file, i) =>
      new ManagedProcess(
        'relay',
        { ...env, ...partitioned, ...(relayCount === 1 ? {} : { TXOUTBOX_RELAY_MEMBER: `relay-${i + 1}` }), TXOUTBOX_FAULT_KILL_AFTER_ACK_FILE: file, NODE_OPTIONS: preload },
        join(logDir, relayCount === 1 ? 'relay.log' : `relay-${i + 1}.log`),
      ),
  );
  const worker = new ManagedProcess('worker', { ...env, TXOUTBOX_FAULT_KILL_AFTER_ACK_FILE: trigger, NODE_OPTIONS: preload }, join(logDir, 'worker.log'));
  await Promise.all([...relays.map((r) => r.start()), worker.start()]);
  // The relay a relay fault hits: one of them, by the seed (no draw with one relay, so its seeds replay as before).
  const pickRelay = (): [ManagedProcess, string] => {
    const i = relayCount === 1 ? 0 : Math.floor(random() * relayCount);
    return [relays[i] as ManagedProcess, relayTriggers[i] as string];
  };

  // What the writers were told.
  const committed = new Map<string, { key: string; ordered: boolean }>();
  const aborted = new Set<string>();
  const uncertain = new Map<string, { key: string; ordered: boolean }>();
  let writeErrors = 0;
  const write = async (n: number, key: string, ordered: boolean, abort: boolean): Promise<void> => {
    let id: string | undefined;
    try {
      await db.inTransaction(async (tx) => {
        const event = await outbox.add({ type: ordered ? 'faults.LineAdded' : 'faults.Deposited', aggregateId: key, payload: { account: key, n } }, tx);
        id = event.id;
        if (abort) throw new AbortedOnPurpose('aborted after outbox.add()');
      });
      if (id !== undefined) committed.set(id, { key, ordered });
    } catch (err) {
      if (err instanceof AbortedOnPurpose && id !== undefined) aborted.add(id);
      else {
        writeErrors += 1;
        if (id !== undefined) uncertain.set(id, { key, ordered });
      }
    }
  };

  // The fault plan, from the seed: every kind once (shuffled) while there are enough faults, then at random.
  // The relay sends only on the fast path; the worker there only sends the events that fell back.
  const available = FAULT_KINDS.filter((k) => (options.fastPath ? k !== 'kill-worker-after-ack' : k !== 'kill-relay-after-ack'));
  const kinds: FaultKind[] = [];
  while (kinds.length < options.faults) {
    const round: FaultKind[] = [...available];
    for (let i = round.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [round[i], round[j]] = [round[j] as FaultKind, round[i] as FaultKind];
    }
    kinds.push(...round.slice(0, options.faults - kinds.length));
  }
  const times = kinds.map(() => options.durationMs * (0.05 + 0.75 * random())).sort((a, b) => a - b);
  const plan = kinds.map((kind, i) => ({ kind, atMs: Math.round(times[i] ?? 0), pauseMs: 1_000 + Math.round(random() * 9_000) }));
  log(`plan: ${plan.map((p) => `${p.kind}@${(p.atMs / 1000).toFixed(0)}s`).join(', ')}`);

  const t0 = Date.now();
  let loadRunning = true;
  const inFlight = new Set<Promise<void>>();
  const load = (async () => {
    for (let n = 0; loadRunning; n++) {
      const key = `acct-${Math.floor(random() * keys)}`;
      const ordered = random() < 0.5;
      const abort = random() < abortShare;
      const due = t0 + (n * 1000) / rate;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      if (inFlight.size >= 32) await Promise.race(inFlight);
      const p = write(n, key, ordered, abort).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
  })();

  const done: Verdict['faults'] = [];
  for (const step of plan) {
    const wait = t0 + step.atMs - Date.now();
    if (wait > 0) await sleep(wait);
    const started = Date.now();
    log(`${((started - t0) / 1000).toFixed(1)}s: ${step.kind}`);
    await inject(step.kind, step.pauseMs);
    done.push({ atMs: started - t0, kind: step.kind, tookMs: Date.now() - started });
  }
  const rest = t0 + options.durationMs - Date.now();
  if (rest > 0) await sleep(rest);
  loadRunning = false;
  await load;
  log(`load stopped after ${((Date.now() - t0) / 1000).toFixed(0)}s: ${committed.size} committed, ${aborted.size} aborted, ${writeErrors} write errors`);

  async function inject(kind: FaultKind, pauseMs: number): Promise<void> {
    switch (kind) {
      case 'kill-relay': {
        const [relay] = pickRelay();
        await relay.kill9();
        await sleep(pauseMs);
        await relay.start();
        return;
      }
      case 'kill-worker':
        await worker.kill9();
        await sleep(pauseMs);
        await worker.start();
        return;
      case 'kill-worker-after-ack':
      case 'kill-relay-after-ack': {
        const [target, file] = kind === 'kill-worker-after-ack' ? [worker, trigger] : pickRelay();
        writeFileSync(file, 'kill on the next acknowledged send\n');
        const fired = await target.exited(60_000).then(
          () => true,
          () => false,
        );
        rmSync(file, { force: true });
        if (!fired) {
          log(`${kind}: no send was acknowledged within 60 s; killing the ${target.role} instead`);
          await target.kill9();
        }
        await target.start();
        return;
      }
      case 'kafka-restart':
        await infra('down', 'kafka');
        await sleep(pauseMs);
        await infra('up', 'kafka');
        return;
      case 'kafka-hang': {
        // Longer than the producer's acknowledgement timeout (10 s) and kafkajs' request timeout.
        const pid = infraPid('kafka');
        process.kill(pid, 'SIGSTOP');
        await sleep(12_000 + pauseMs);
        process.kill(pid, 'SIGCONT');
        return;
      }
      case 'temporal-restart':
        await infra('down', 'temporal');
        await sleep(pauseMs);
        await infra('up', 'temporal');
        return;
      case 'store-restart':
        await infra('down', storeKind);
        await sleep(pauseMs);
        await infra('up', storeKind);
        return;
    }
  }

  // The processes must be running for the drain (a kill at the very end may have left one down).
  for (const relay of relays) if (!relay.alive) await relay.start();
  if (!worker.alive) await worker.start();

  // Settle: every event in the store published, or stuck (escalated, with its reason).
  const drainTimeoutMs = options.drainTimeoutMs ?? 600_000;
  log('waiting for every event to be published or stuck');
  await waitFor(
    async () => (await db.store.stats()).counts.pending === 0,
    { timeoutMs: drainTimeoutMs, intervalMs: 1_000, what: 'every event published or stuck' },
  ).catch((err: unknown) => log(`drain incomplete: ${String(err)}`));

  // The independent reader: the whole topic, to the end offsets the broker reports now.
  const reader = kafka.consumer({ groupId: uniqueName('faults-checker'), maxWaitTimeInMs: 200 });
  const readerAdmin = kafka.admin();
  await readerAdmin.connect();
  const ends = await readerAdmin.fetchTopicOffsets(topic);
  await readerAdmin.disconnect();
  const messages: Array<{ partition: number; offset: number; key: string; id: string }> = [];
  const reached = new Map<number, number>();
  await reader.connect();
  await reader.subscribe({ topic, fromBeginning: true });
  await reader.run({
    eachMessage: async ({ partition, message }) => {
      const id = message.headers?.ce_id?.toString() ?? '';
      messages.push({ partition, offset: Number(message.offset), key: message.key?.toString() ?? '', id });
      reached.set(partition, Number(message.offset) + 1);
    },
  });
  await waitFor(() => ends.every((e) => (reached.get(e.partition) ?? 0) >= Number(e.high)), {
    timeoutMs: 120_000,
    what: 'the checker to read the whole topic',
  });
  await reader.disconnect();

  const stored = await db.auditRows();
  const storedById = new Map(stored.map((r) => [r.id, r]));
  const inKafka = new Set(messages.map((m) => m.id));
  // A commit that failed with an error counts as committed when the store has the row.
  const allCommitted = new Map(committed);
  for (const [id, info] of uncertain) if (storedById.has(id)) allCommitted.set(id, info);

  const stuck = stored.filter((r) => r.status === 'stuck');
  // An event whose recorded position holds another message (or none) was acknowledged with someone
  // else's offset: that acknowledgement wrote nothing of it, so it counts as lost even if a later
  // duplicate happens to carry its id.
  const atPosition = new Map(messages.map((m) => [`${m.partition}:${m.offset}`, m.id]));
  const misrecorded = stored.filter((r) => r.offset !== null && atPosition.get(`${r.partition}:${r.offset}`) !== r.id).map((r) => r.id);
  const lost = [
    ...new Set([...[...allCommitted.keys()].filter((id) => !inKafka.has(id) && storedById.get(id)?.status !== 'stuck'), ...misrecorded]),
  ];
  const invented = messages.filter((m) => !allCommitted.has(m.id));
  const abortedLeaked = [...aborted].filter((id) => storedById.has(id) || inKafka.has(id));
  const missingInStore = [...committed.keys()].filter((id) => !storedById.has(id));
  const unresolved = stored.filter((r) => !(r.status === 'published' || (r.status === 'stuck' && r.lastError)));

  // Per-key order of the ordered type: first appearances in partition order follow the store's sequence.
  let orderViolations = 0;
  const ordered = [...messages].sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  const lastSeq = new Map<string, number>();
  const seen = new Set<string>();
  for (const m of ordered) {
    const row = storedById.get(m.id);
    if (seen.has(m.id) || row?.sequence === null || row?.sequence === undefined) continue;
    seen.add(m.id);
    const seq = Number(row.sequence);
    if (seq < (lastSeq.get(m.key) ?? -1)) {
      orderViolations += 1;
      log(`order violation on key ${m.key}: sequence ${seq} after ${lastSeq.get(m.key)}`);
    }
    lastSeq.set(m.key, Math.max(seq, lastSeq.get(m.key) ?? -1));
  }

  // The inbox: each event in Kafka applied exactly once (waiting for the consumer to catch up).
  const countEffects = async (): Promise<Map<string, number>> => new Map((await db.effectCounts()).map((r) => [r.eventId, r.n]));
  const effects = await waitFor(
    async () => {
      const counted = await countEffects();
      return [...inKafka].every((id) => counted.has(id)) ? counted : false;
    },
    { timeoutMs: 180_000, intervalMs: 1_000, what: 'the inbox consumer to apply every event in the topic' },
  ).catch(async (err: unknown) => {
    log(`inbox incomplete: ${String(err)}`);
    return countEffects();
  });
  const inboxApplied = [...inKafka].filter((id) => effects.get(id) === 1).length;
  const inboxWrong = [...new Set([...inKafka, ...effects.keys()])].filter((id) => effects.get(id) !== 1 || !inKafka.has(id)).length;

  const verdictCounts = {
    committed: allCommitted.size,
    aborted: aborted.size,
    writeErrors,
    published: stored.filter((r) => r.status === 'published').length,
    stuck: stuck.length,
    messages: messages.length,
    duplicates: messages.length - inKafka.size,
    lost: lost.length,
    invented: invented.length,
    abortedLeaked: abortedLeaked.length,
    missingInStore: missingInStore.length,
    orderViolations,
    unresolved: unresolved.length,
    inboxApplied,
    inboxWrong,
  };
  const ok =
    verdictCounts.lost === 0 &&
    verdictCounts.invented === 0 &&
    verdictCounts.abortedLeaked === 0 &&
    verdictCounts.missingInStore === 0 &&
    verdictCounts.orderViolations === 0 &&
    verdictCounts.unresolved === 0 &&
    verdictCounts.inboxWrong === 0 &&
    verdictCounts.committed > 0;
  const seconds = Math.round((Date.now() - t0) / 1000);
  const line =
    `verdict: ${ok ? 'PASS' : 'FAIL'} store=${storeKind} mode=${options.fastPath ? 'fast-path' : 'default'} relays=${relayCount} seed=${options.seed} faults=${done.length} committed=${verdictCounts.committed} published=${verdictCounts.published} ` +
    `stuck=${verdictCounts.stuck} duplicates=${verdictCounts.duplicates} lost=${verdictCounts.lost} invented=${verdictCounts.invented} ` +
    `aborted=${verdictCounts.aborted} aborted-leaked=${verdictCounts.abortedLeaked} missing-in-store=${verdictCounts.missingInStore} ` +
    `order-violations=${verdictCounts.orderViolations} unresolved=${verdictCounts.unresolved} inbox-once=${inboxApplied} inbox-wrong=${inboxWrong} ` +
    `write-errors=${writeErrors} messages=${verdictCounts.messages} seconds=${seconds}`;
  log(line);
  if (lost.length > 0) log(`lost: ${lost.slice(0, 20).join(' ')}`);
  if (unresolved.length > 0) log(`unresolved: ${unresolved.slice(0, 20).map((r) => `${r.id}=${r.status}`).join(' ')}`);

  // Clean up: processes, the inbox consumer, workflows still waiting (stuck events, sequencers).
  await Promise.all([...relays.map((r) => r.stop()), worker.stop()]);
  await inboxConsumer?.shutdown();
  const connection = await Connection.connect({ address: servers.temporalAddress });
  const client = new Client({ connection });
  for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` })) {
    await client.workflow.getHandle(wf.workflowId, wf.runId).terminate('fault harness finished').catch(() => undefined);
  }
  await connection.close();
  if (ok) {
    await db.teardown();
    const cleanup = kafka.admin();
    await cleanup.connect();
    await cleanup.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await cleanup.disconnect();
  } else {
    log(`kept for inspection: ${db.location}, topic ${topic}, logs ${logDir}`);
    await db.close();
  }
  return { ok, seed: options.seed, faults: done, ...verdictCounts, seconds, line };
}
