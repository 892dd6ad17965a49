/**
 * `txoutbox`: the operator's command line. Reads the same TXOUTBOX_* settings as the relay and the
 * worker (workers/config.ts). Exit codes: 0 done, 1 failure (a server, the store), 2 usage (bad
 * arguments, missing confirmation), 3 not found, 4 refused (the action does not fit the event's state).
 */
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { Client, Connection, WorkflowNotFoundError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { Kafka, logLevel as kafkaLogLevel } from 'kafkajs';
import { checkPartitionCount, checkTopicName, isEventId, isOutboxError, minEventIdAt, OutboxError, OutboxErrorCode, TYPE_NAME, type ListQuery, type OutboxEvent, type OutboxAdminStore, type OutboxStatus } from '../domain/outbox';
import {
  compensateUpdate,
  discardUpdate,
  retryUpdate,
  sequencerQuery,
  stateQuery,
  type EventWorkflowState,
  type SequencerState,
} from '../workflows/signals';
import type { PublishEventInput } from '../workflows/types';
import { OutboxSearchAttributes } from '../workflows/search-attributes';
import { CONFIG_TEMPLATE, kafkaClientConfig, loadConfig, redactConfig, temporalConnectionOptions, type TxoutboxConfig } from './config';
import { eventWorkflowId, hasGrpcCode, sequencerWorkflowId } from './start-event-workflow';
import { storeFromConfig } from './store-from-config';

export const ExitCode = { ok: 0, failure: 1, usage: 2, notFound: 3, refused: 4 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure with the exit code it ends the CLI with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
}

const USAGE = `usage: txoutbox <command> [options]

  status [--watch [--interval 2s]]        counts by status, oldest pending age; --watch: a live view
  list [--status S] [--type T] [--limit N]  events, oldest first (default: --status stuck)
  show <eventId>                          envelope, workflow state, history summary, Web UI link
  retry <eventId>                         publish a stuck event again, with a fresh attempt budget
  compensate <eventId> [--reason R]       run the compensation of a stuck event's type   (asks; --yes)
  discard <eventId> --reason R            drop a stuck event, keeping the reason          (asks; --yes)
                                          retry, compensate, discard: --timeout 2m (default) for the
                                          workflow to carry the action out
  replay <eventId> | --from T --to T      publish published events again, same event id  (asks; --yes)
  purge --published-older-than 7d         delete published events older than that        (asks; --yes)
  migrate [--partitions N]                create or update the store's tables or collections and
                                          indexes; only what is missing, safe on a live database
                                          (\`setup\` is the same command); N: the outbox's partition
                                          count, set by the first migrate and fixed after (default 16)
  register-search-attributes              add the outbox's search attributes to the namespace
  create-topics <topic>... [--partitions N] [--replication-factor N]
                                          create the topics that are missing, and the dead-letter
                                          topic (TXOUTBOX_DEAD_LETTER_TOPIC); N: the broker's default
  config [--effective]                    print the TXOUTBOX_* variables and their defaults;
                                          --effective: the loaded values, secrets redacted

options: --json (machine-readable output), --yes (no confirmation prompt)
exit codes: 0 done, 1 failure, 2 usage, 3 not found, 4 refused by the event's state`;

const STATUSES: readonly OutboxStatus[] = ['pending', 'published', 'stuck', 'compensated', 'discarded'];

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Asks a yes/no question; null when there is no terminal to ask on. */
  confirm: (question: string) => Promise<boolean | null>;
}

interface Context {
  config: TxoutboxConfig;
  store: OutboxAdminStore;
  client: Client;
  close: () => Promise<void>;
}

export async function runCli(argv: string[], io: Io = processIo(), env: NodeJS.ProcessEnv = process.env): Promise<ExitCode> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean', default: false },
        yes: { type: 'boolean', default: false },
        status: { type: 'string' },
        type: { type: 'string' },
        limit: { type: 'string' },
        reason: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        'published-older-than': { type: 'string' },
        watch: { type: 'boolean', default: false },
        effective: { type: 'boolean', default: false },
        interval: { type: 'string' },
        iterations: { type: 'string' },
        timeout: { type: 'string' },
        partitions: { type: 'string' },
        'replication-factor': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    io.err(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return ExitCode.usage;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    (values.help ? io.out : io.err)(USAGE);
    return values.help ? ExitCode.ok : ExitCode.usage;
  }
  if (command === 'config') {
    if (!values.effective) {
      io.out(CONFIG_TEMPLATE.trimEnd());
      return ExitCode.ok;
    }
    try {
      io.out(JSON.stringify(redactConfig(loadConfig(env)), null, 2));
      return ExitCode.ok;
    } catch (err) {
      io.err(`txoutbox: ${err instanceof Error ? err.message : String(err)}`);
      return ExitCode.usage;
    }
  }
  const print = (human: string, json: unknown): void => io.out(values.json ? JSON.stringify(json, null, 2) : human);

  let ctx: Context | undefined;
  try {
    const needsEventId = ['show', 'retry', 'compensate', 'discard'].includes(command) || (command === 'replay' && !values.from);
    const eventId = rest[0];
    if (needsEventId && (eventId === undefined || !isEventId(eventId))) {
      throw new CliError(`${command} needs an event id (a UUIDv7), got ${JSON.stringify(eventId ?? '')}`, ExitCode.usage);
    }
    const config = loadConfig(env);
    if (command === 'setup' || command === 'migrate') {
      // migrate --partitions N: the outbox's partition count, at its first set-up (TXOUTBOX_PARTITIONS).
      let partitions = config.partitions;
      try {
        if (values.partitions !== undefined) partitions = checkPartitionCount(Number(values.partitions));
      } catch (err) {
        throw new CliError(`--${err instanceof Error ? err.message : String(err)} (${JSON.stringify(values.partitions)})`, ExitCode.usage);
      }
      return await migrate({ ...config, partitions }, print);
    }
    if (command === 'create-topics') return await createTopics(config, rest, values, print);
    if (command === 'register-search-attributes') return await registerSearchAttributes(config, print);
    ctx = await connect(config);
    switch (command) {
      case 'status':
        return values.watch ? await watch(ctx, values, io) : await status(ctx, print);
      case 'list':
        return await list(ctx, values, print);
      case 'show':
        return await show(ctx, eventId as string, print);
      case 'retry':
        return await operate(ctx, eventId as string, 'retry', undefined, values, io, print);
      case 'compensate':
        return await operate(ctx, eventId as string, 'compensate', values.reason, values, io, print);
      case 'discard':
        if (!values.reason || values.reason.trim() === '') throw new CliError('discard needs --reason "..." (it is kept with the event)', ExitCode.usage);
        return await operate(ctx, eventId as string, 'discard', values.reason, values, io, print);
      case 'replay':
        return await replay(ctx, eventId, values, io, print);
      case 'purge':
        return await purge(ctx, values, io, print);
      default:
        throw new CliError(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`, ExitCode.usage);
    }
  } catch (err) {
    if (err instanceof CliError) {
      io.err(err.message);
      return err.exitCode;
    }
    if (err instanceof OutboxError) {
      io.err(`${err.code}: ${err.message}`);
      return err.code === 'INVALID_CONFIG' ? ExitCode.usage : ExitCode.failure;
    }
    io.err(`failed: ${err instanceof Error ? err.message : String(err)}`);
    return ExitCode.failure;
  } finally {
    await ctx?.close();
  }
}

/** `migrate` (or `setup`): the store only (no Temporal needed); does what is missing and says what. */
async function migrate(config: TxoutboxConfig, print: Print): Promise<ExitCode> {
  const { store, close } = await storeFromConfig(config);
  let done: string[];
  try {
    done = await store.setup();
  } finally {
    await close();
  }
  const where = config.store === 'mongodb' ? `MongoDB database ${config.mongodbDb}` : `PostgreSQL schema ${config.pgSchema}`;
  const human = [...done, done.length === 0 ? `the outbox store is set up (${where}): nothing to change` : `the outbox store is set up (${where})`].join('\n');
  print(human, { setUp: true, store: config.store, where, changes: done });
  return ExitCode.ok;
}

/** Temporal's IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD (temporal/api/enums/v1/common.proto). */
const INDEXED_VALUE_TYPE_KEYWORD = 2;

/** `register-search-attributes`: the four Keyword attributes the workflows set, in the configured namespace. */
async function registerSearchAttributes(config: TxoutboxConfig, print: Print): Promise<ExitCode> {
  const connection = await connectTemporal(config);
  try {
    const namespace = config.temporalNamespace;
    const listed = await connection.operatorService.listSearchAttributes({ namespace });
    const existing = { ...listed.systemAttributes, ...listed.customAttributes } as Record<string, number>;
    const names = Object.values(OutboxSearchAttributes).map((key) => key.name);
    for (const name of names) {
      if (name in existing && existing[name] !== INDEXED_VALUE_TYPE_KEYWORD) {
        throw new CliError(`search attribute ${name} exists in namespace ${namespace} with another type (${existing[name]}), not Keyword`, ExitCode.refused);
      }
    }
    const missing = names.filter((name) => !(name in existing));
    if (missing.length > 0) {
      await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: Object.fromEntries(missing.map((name) => [name, INDEXED_VALUE_TYPE_KEYWORD])) });
    }
    const lines = names.map((name) => `${name} (Keyword): ${missing.includes(name) ? 'added' : 'already registered'}`);
    print([...lines, `namespace ${namespace}`].join('\n'), { namespace, added: missing, alreadyRegistered: names.filter((n) => !missing.includes(n)) });
    return ExitCode.ok;
  } finally {
    await connection.close();
  }
}

/** `create-topics`: the topics named, and the dead-letter topic, each only when missing. */
async function createTopics(config: TxoutboxConfig, topics: string[], values: Values, print: Print): Promise<ExitCode> {
  const deadLetter = config.publishPolicy.deadLetterTopic;
  const wanted = [...new Set([...topics, ...(deadLetter === undefined ? [] : [deadLetter])])];
  if (wanted.length === 0) throw new CliError('create-topics needs topic names (and creates TXOUTBOX_DEAD_LETTER_TOPIC when set)', ExitCode.usage);
  for (const topic of wanted) {
    try {
      checkTopicName(topic);
    } catch (err) {
      throw new CliError(err instanceof Error ? err.message : String(err), ExitCode.usage);
    }
  }
  const count = (option: 'partitions' | 'replication-factor'): number => {
    const text = values[option];
    if (text === undefined) return -1; // the broker's default
    if (!/^\d{1,4}$/.test(text) || Number(text) < 1) throw new CliError(`--${option} must be a whole number from 1, got ${JSON.stringify(text)}`, ExitCode.usage);
    return Number(text);
  };
  const numPartitions = count('partitions');
  const replicationFactor = count('replication-factor');
  const kafka = new Kafka({ ...kafkaClientConfig(config, 'txoutbox-cli'), logLevel: kafkaLogLevel.NOTHING, retry: { retries: 2 } });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = wanted.filter((topic) => !existing.has(topic));
    if (missing.length > 0) {
      await admin.createTopics({ waitForLeaders: true, topics: missing.map((topic) => ({ topic, numPartitions, replicationFactor })) });
    }
    const lines = wanted.map((topic) => `${topic}: ${missing.includes(topic) ? 'created' : 'exists'}${topic === deadLetter ? ' (dead-letter topic)' : ''}`);
    print(lines.join('\n'), { created: missing, existed: wanted.filter((t) => !missing.includes(t)), deadLetterTopic: deadLetter ?? null });
    return ExitCode.ok;
  } finally {
    await admin.disconnect();
  }
}

/** The CLI's connection to the Temporal frontend (a short connect timeout: an operator is waiting). */
function connectTemporal(config: TxoutboxConfig): Promise<Connection> {
  return Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: 5_000 });
}

async function connect(config: TxoutboxConfig): Promise<Context> {
  const connection = await connectTemporal(config);
  const client = new Client({ connection, namespace: config.temporalNamespace });
  const { store, close } = await storeFromConfig(config);
  return { config, store, client, close: async () => void (await Promise.all([close(), connection.close()])) };
}

type Print = (human: string, json: unknown) => void;
type Values = { partitions?: string; 'replication-factor'?: string; timeout?: string; interval?: string; iterations?: string; json?: boolean; yes?: boolean; status?: string; type?: string; limit?: string; from?: string; to?: string; 'published-older-than'?: string };

async function status(ctx: Context, print: Print): Promise<ExitCode> {
  const stats = await ctx.store.stats();
  const ageMs = stats.oldestPending ? Date.now() - stats.oldestPending.occurredAt.getTime() : null;
  const lines = STATUSES.map((s) => `${s.padEnd(12)} ${stats.counts[s]}`);
  lines.push(`oldest pending: ${stats.oldestPending ? `${stats.oldestPending.id}, ${formatAge(ageMs ?? 0)} old` : 'none'}`);
  // Partitioned relays (issue 17): each partition's owner, lease and backlog, when a relay holds one
  // or the configuration says they are partitioned.
  // An outbox not migrated since partitions came has none to show; its counts are still shown.
  const partitions = await ctx.store.partitionStatus(ctx.config.relayName).catch((err: unknown) => {
    if (!ctx.config.relayPartitioned && isOutboxError(err, OutboxErrorCode.storeNotSetUp)) return [];
    throw err;
  });
  const shown = ctx.config.relayPartitioned || partitions.some((p) => p.owner !== null);
  if (shown) {
    const now = Date.now();
    lines.push('', `partitions of relay group ${JSON.stringify(ctx.config.relayName)}:`, 'partition  owner                                     lease      pending  oldest pending');
    for (const p of partitions) {
      const lease = p.owner === null || p.expiresAt === null ? 'none' : p.expiresAt.getTime() > now ? `${formatAge(p.expiresAt.getTime() - now)} left` : 'lapsed';
      const oldest = p.oldestPending === null ? '' : `${formatAge(now - p.oldestPending.occurredAt.getTime())} old`;
      lines.push(`${String(p.partition).padStart(9)}  ${(p.owner ?? '-').padEnd(40)}  ${lease.padEnd(9)}  ${String(p.pending).padStart(7)}  ${oldest}`);
    }
  }
  print(lines.join('\n'), {
    counts: stats.counts,
    oldestPendingId: stats.oldestPending?.id ?? null,
    oldestPendingAgeMs: ageMs,
    ...(shown ? { partitions: partitions.map((p) => ({ partition: p.partition, owner: p.owner, leaseExpiresAt: p.expiresAt, pending: p.pending, oldestPendingId: p.oldestPending?.id ?? null })) } : {}),
  });
  return ExitCode.ok;
}

const SPARKS = '▁▂▃▄▅▆▇█';

/** A sparkline of the last values (the highest is a full block). */
export function sparkline(values: number[]): string {
  const max = Math.max(...values, 0);
  return values.map((v) => (max === 0 ? SPARKS[0] : SPARKS[Math.min(SPARKS.length - 1, Math.round((v / max) * (SPARKS.length - 1)))])).join('');
}

/** `status --watch`: throughput, lag and stuck count, redrawn every interval (until Ctrl-C). */
async function watch(ctx: Context, values: Values, io: Io): Promise<ExitCode> {
  const intervalMs = parseDuration(values.interval ?? '2s');
  const iterations = values.iterations === undefined ? Infinity : Number(values.iterations);
  if (!(iterations >= 1)) throw new CliError('--iterations must be a positive whole number', ExitCode.usage);
  const history: number[] = [];
  let previous: { published: number; at: number } | undefined;
  let stop = false;
  const onSigint = (): void => {
    stop = true;
  };
  process.once('SIGINT', onSigint);
  try {
    for (let i = 0; i < iterations && !stop; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, intervalMs));
      const stats = await ctx.store.stats();
      const now = Date.now();
      const published = stats.counts.published + stats.counts.compensated + stats.counts.discarded;
      const rate = previous ? Math.max(0, published - previous.published) / ((now - previous.at) / 1000) : 0;
      previous = { published, at: now };
      history.push(rate);
      if (history.length > 40) history.shift();
      const lagMs = stats.oldestPending ? now - stats.oldestPending.occurredAt.getTime() : 0;
      const screen = [
        `txoutbox status — ${new Date(now).toISOString()}  (every ${values.interval ?? '2s'}, Ctrl-C to stop)`,
        '',
        `throughput   ${rate.toFixed(1).padStart(8)} events/s   ${sparkline(history)}`,
        `lag          ${formatAge(lagMs).padStart(8)}            oldest pending ${stats.oldestPending?.id ?? '-'}`,
        `pending      ${String(stats.counts.pending).padStart(8)}`,
        `stuck        ${String(stats.counts.stuck).padStart(8)}${stats.counts.stuck > 0 ? '   ← txoutbox list --status stuck' : ''}`,
        `published    ${String(stats.counts.published).padStart(8)}`,
        `compensated  ${String(stats.counts.compensated).padStart(8)}`,
        `discarded    ${String(stats.counts.discarded).padStart(8)}`,
      ];
      io.out((process.stdout.isTTY ? '\x1b[2J\x1b[H' : '') + screen.join('\n'));
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
  return ExitCode.ok;
}

async function list(ctx: Context, values: Values, print: Print): Promise<ExitCode> {
  const statusFilter = values.status ?? 'stuck';
  if (!STATUSES.includes(statusFilter as OutboxStatus)) throw new CliError(`--status must be one of ${STATUSES.join(', ')}`, ExitCode.usage);
  const limit = values.limit === undefined ? 50 : Number(values.limit);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) throw new CliError('--limit must be a whole number from 1 to 10000', ExitCode.usage);
  if (values.type !== undefined) {
    if (!TYPE_NAME.test(values.type)) throw new CliError(`--type ${JSON.stringify(values.type)} is not an event type name (${TYPE_NAME.source})`, ExitCode.usage);
    if ((await ctx.store.list({ type: values.type, limit: 1 })).length === 0) {
      throw new CliError(`no events of type ${JSON.stringify(values.type)} in the outbox store (in any status)`, ExitCode.notFound);
    }
  }
  const events = await ctx.store.list({ status: statusFilter as OutboxStatus, type: values.type, limit });
  const human = events.length === 0 ? `no ${statusFilter} events` : events.map((e) => `${e.id}  ${e.type}  ${e.aggregateId}  attempts=${e.attempts}  ${e.lastError ?? ''}`).join('\n');
  print(human, events.map(summary));
  return ExitCode.ok;
}

async function show(ctx: Context, eventId: string, print: Print): Promise<ExitCode> {
  const event = await ctx.store.get(eventId);
  if (event === null) throw new CliError(`event ${eventId} is not in the outbox store`, ExitCode.notFound);
  const handle = ctx.client.workflow.getHandle(eventWorkflowId(eventId, ctx.config.workflowIdPrefix));
  let workflow: { status: string; state: EventWorkflowState | null; historyEvents: number; activityAttempts: number } | null = null;
  try {
    const description = await handle.describe();
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const state = await handle.query(stateQuery).catch(() => null);
    workflow = {
      status: description.status.name,
      state,
      historyEvents: events.length,
      activityAttempts: events.filter((e) => e.activityTaskStartedEventAttributes).reduce((n, e) => n + (e.activityTaskStartedEventAttributes?.attempt ?? 1), 0),
    };
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  // An ordered event may wait behind an earlier one of its key: its sequencer says which.
  let sequencer: SequencerState | null = null;
  if (event.sequence !== null) {
    sequencer = await ctx.client.workflow
      .getHandle(sequencerWorkflowId(event.topic, event.key, ctx.config.workflowIdPrefix))
      .query(sequencerQuery)
      .catch(() => null);
  }
  const heldBy = sequencer && sequencer.holding !== eventId && sequencer.waiting.includes(eventId) ? sequencer.holding : null;
  const link = `${ctx.config.temporalUiUrl}/namespaces/${ctx.config.temporalNamespace}/workflows/${eventWorkflowId(eventId, ctx.config.workflowIdPrefix)}`;
  const human = [
    ...describeEvent(event),
    workflow
      ? `workflow ${eventWorkflowId(eventId, ctx.config.workflowIdPrefix)}: ${workflow.status}, ${workflow.historyEvents} history events${workflow.state ? `, ${workflow.state.status} after ${workflow.state.attempts} attempt(s), ${workflow.state.retryRounds} retry round(s)${workflow.state.lastError ? `, last error: ${workflow.state.lastError}` : ''}` : ''}`
      : `workflow ${eventWorkflowId(eventId, ctx.config.workflowIdPrefix)}: not found (${event.status === 'published' ? "published by the relay's fast path, or past Temporal's retention" : 'not started yet, or past Temporal\'s retention'})`,
    ...(event.sequence !== null
      ? [`ordered: sequence ${event.sequence} of key ${event.key}${heldBy ? `, held back by ${heldBy} (${sequencer?.waiting.length ?? 0} waiting)` : ''}`]
      : []),
    `Web UI: ${link}`,
  ].join('\n');
  print(human, { event, workflow, sequencer, heldBy, webUi: link });
  return ExitCode.ok;
}

/** An event as text lines (`show` without --json): its fields, then its payload as one JSON line. */
function describeEvent(event: OutboxEvent): string[] {
  return [
    `event ${event.id}: ${event.type} v${event.schemaVersion}, ${event.status}${event.attempts > 0 ? ` after ${event.attempts} attempt(s)` : ''}`,
    `  aggregate ${event.aggregateType} ${event.aggregateId}; topic ${event.topic}, key ${event.key}; occurred at ${event.occurredAt.toISOString()}`,
    ...(event.kafka ? [`  in Kafka at partition ${event.kafka.partition}, offset ${event.kafka.offset}${event.publishedAt ? `, published at ${event.publishedAt.toISOString()}` : ''}`] : []),
    ...(event.lastError ? [`  last error: ${event.lastError}`] : []),
    ...(event.resolution ? [`  ${event.resolution.status}${event.resolution.reason ? `: ${event.resolution.reason}` : ''}`] : []),
    `  payload: ${JSON.stringify(event.payload)}`,
  ];
}

async function confirmOrRefuse(io: Io, values: Values, question: string): Promise<void> {
  if (values.yes) return;
  const answer = await io.confirm(`${question} [y/N] `);
  if (answer === null) throw new CliError(`${question}: refused without --yes (no terminal to confirm on)`, ExitCode.usage);
  if (!answer) throw new CliError('cancelled', ExitCode.usage);
}

async function operate(
  ctx: Context,
  eventId: string,
  action: 'retry' | 'compensate' | 'discard',
  reason: string | undefined,
  values: Values,
  io: Io,
  print: Print,
): Promise<ExitCode> {
  const timeout = values.timeout ?? DEFAULT_OPERATE_TIMEOUT;
  const timeoutMs = parseDuration(timeout);
  const event = await ctx.store.get(eventId);
  if (event === null) throw new CliError(`event ${eventId} is not in the outbox store`, ExitCode.notFound);
  const handle = ctx.client.workflow.getHandle(eventWorkflowId(eventId, ctx.config.workflowIdPrefix));
  // A workflow may still wait as stuck for an event the store has since seen published (a late
  // acknowledgement recorded by an earlier release, whose workflows did not wait such sends out): it
  // is sent the action all the same, and settles as the store says, undoing and dropping nothing.
  const waitsAsStuck = async (): Promise<boolean> => (await handle.query(stateQuery).catch(() => null))?.status === 'stuck';
  if (event.status !== 'stuck' && !(await waitsAsStuck())) throw new CliError(`event ${eventId} is ${event.status}: ${action} applies only to a stuck event`, ExitCode.refused);
  if (action !== 'retry') await confirmOrRefuse(io, values, `${action} event ${eventId} (${event.type}, ${event.aggregateId})?`);
  let state: EventWorkflowState;
  try {
    // The whole update (its request and the wait for its outcome) within the timeout.
    state = await ctx.client.connection.withDeadline(Date.now() + timeoutMs, () =>
      action === 'retry'
        ? handle.executeUpdate(retryUpdate)
        : action === 'compensate'
          ? handle.executeUpdate(compensateUpdate, { args: [{ reason }] })
          : handle.executeUpdate(discardUpdate, { args: [{ reason: reason ?? '' }] }),
    );
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new CliError(`refused: ${err.cause?.message ?? err.message}`, ExitCode.refused);
    if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError || hasGrpcCode(err, DEADLINE_EXCEEDED)) {
      throw new CliError(
        `${action} of event ${eventId} was not carried out within ${timeout} (is a worker running? a compensation is tried for up to about ` +
          `a minute and a half); the workflow still has the request, if it accepted it: see \`txoutbox show ${eventId}\``,
        ExitCode.failure,
      );
    }
    if (err instanceof WorkflowNotFoundError) return operateWithoutWorkflow(ctx, event, action, reason, print);
    throw err;
  }
  print(`${action}: event ${eventId} is now ${state.status}${state.lastError && state.status === 'stuck' ? ` (${state.lastError})` : ''}`, state);
  return state.status === 'stuck' && action !== 'retry' ? ExitCode.failure : ExitCode.ok;
}

/** How long retry, compensate and discard wait for the workflow to carry the action out. */
const DEFAULT_OPERATE_TIMEOUT = '2m';

/** gRPC DEADLINE_EXCEEDED. */
const DEADLINE_EXCEEDED = 4;

/**
 * A stuck event whose workflow is no longer open (terminated or cancelled in the Web UI, or gone
 * after Temporal's retention): the action is taken in the store. `retry` makes it pending again, and
 * the relay's sweeper starts a new workflow for it; `discard` discards it with the reason;
 * `compensate` needs the worker's registered compensation, which only a workflow runs: refused.
 */
async function operateWithoutWorkflow(
  ctx: Context,
  event: OutboxEvent,
  action: 'retry' | 'compensate' | 'discard',
  reason: string | undefined,
  print: Print,
): Promise<ExitCode> {
  const eventId = event.id;
  if (action === 'compensate') {
    throw new CliError(`event ${eventId} has no open workflow to run its compensation: retry it (a new workflow takes it up) or discard it`, ExitCode.refused);
  }
  const changed =
    action === 'retry'
      ? await ctx.store.transition(eventId, { from: 'stuck', to: 'pending' })
      : await ctx.store.transition(eventId, { from: 'stuck', to: 'discarded', resolution: { status: 'discarded', reason: reason ?? null, at: new Date() } });
  const now = await ctx.store.get(eventId);
  if (!changed) throw new CliError(`event ${eventId} is ${now?.status ?? 'gone'}: ${action} applies only to a stuck event`, ExitCode.refused);
  const status = now?.status ?? (action === 'retry' ? 'pending' : 'discarded');
  const note = action === 'retry' ? ' (its workflow had closed: the relay\'s sweeper starts a new one)' : ' (its workflow had closed: done in the store)';
  print(`${action}: event ${eventId} is now ${status}${note}`, { eventId, status, workflow: 'closed' });
  return ExitCode.ok;
}

async function replay(ctx: Context, eventId: string | undefined, values: Values, io: Io, print: Print): Promise<ExitCode> {
  let events: OutboxEvent[];
  if (eventId !== undefined) {
    const event = await ctx.store.get(eventId);
    if (event === null) throw new CliError(`event ${eventId} is not in the outbox store`, ExitCode.notFound);
    events = [event];
  } else {
    const from = parseTime('--from', values.from);
    const to = parseTime('--to', values.to);
    events = await listAll((query) => ctx.store.list(query), { status: 'published', afterId: minEventIdAt(from.getTime() - 1), beforeId: minEventIdAt(to.getTime()) });
  }
  const notPublished = events.filter((e) => e.status !== 'published');
  if (notPublished.length > 0) {
    throw new CliError(`replay applies only to published events; ${notPublished.map((e) => `${e.id} is ${e.status}`).join(', ')}`, ExitCode.refused);
  }
  if (events.length === 0) {
    print('no published events in that range', { replayed: [] });
    return ExitCode.ok;
  }
  await confirmOrRefuse(io, values, `publish ${events.length} event(s) to Kafka again, with the same event ids?`);
  const stamp = Date.now().toString(36);
  const replayed: Array<{ eventId: string; workflowId: string }> = [];
  for (const event of events) {
    const workflowId = `${eventWorkflowId(event.id, ctx.config.workflowIdPrefix)}-replay-${stamp}`;
    const input: PublishEventInput = { eventId: event.id, policy: ctx.config.publishPolicy, replay: true };
    await ctx.client.workflow.start('publishEventWorkflow', { taskQueue: ctx.config.taskQueue, workflowId, args: [input], memo: { replayOf: event.id } });
    replayed.push({ eventId: event.id, workflowId });
  }
  print(replayed.map((r) => `replay started: ${r.workflowId}`).join('\n'), { replayed });
  return ExitCode.ok;
}

async function purge(ctx: Context, values: Values, io: Io, print: Print): Promise<ExitCode> {
  const age = values['published-older-than'];
  if (age === undefined) throw new CliError('purge needs --published-older-than (e.g. 7d, 12h)', ExitCode.usage);
  const ms = parseDuration(age);
  const before = new Date(Date.now() - ms);
  await confirmOrRefuse(io, values, `delete published events published before ${before.toISOString()}?`);
  const deleted = await ctx.store.purgePublished(before);
  print(`purged ${deleted} published event(s) published before ${before.toISOString()}`, { deleted, before: before.toISOString() });
  return ExitCode.ok;
}

/** Every event of a query, page by page (ids ascend, so each page starts after the last one's id). */
export async function listAll(
  list: (query: ListQuery) => Promise<OutboxEvent[]>,
  query: Omit<ListQuery, 'limit'>,
  pageSize = 1_000,
): Promise<OutboxEvent[]> {
  const all: OutboxEvent[] = [];
  for (let afterId = query.afterId; ; ) {
    const page = await list({ ...query, afterId, limit: pageSize });
    all.push(...page);
    if (page.length < pageSize) return all;
    afterId = page[page.length - 1]?.id;
  }
}

function summary(e: OutboxEvent) {
  return { id: e.id, type: e.type, aggregateId: e.aggregateId, topic: e.topic, status: e.status, attempts: e.attempts, lastError: e.lastError, occurredAt: e.occurredAt };
}

/** `7d`, `12h`, `30m`, `45s` → milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  if (!match) throw new CliError(`a duration looks like 7d, 12h, 30m or 45s, got ${JSON.stringify(text)}`, ExitCode.usage);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

function parseTime(flag: string, text: string | undefined): Date {
  const date = text === undefined ? new Date(NaN) : new Date(text);
  if (Number.isNaN(date.getTime())) throw new CliError(`${flag} needs an ISO-8601 time, got ${JSON.stringify(text ?? '')}`, ExitCode.usage);
  return date;
}

function formatAge(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)}s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)}m`;
  return `${(ms / 3_600_000).toFixed(1)}h`;
}

function processIo(): Io {
  return {
    out: (line) => process.stdout.write(line + '\n'),
    err: (line) => process.stderr.write(line + '\n'),
    confirm: async (question) => {
      if (!process.stdin.isTTY) return null;
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return /^y(es)?$/i.test((await rl.question(question)).trim());
      } finally {
        rl.close();
      }
    },
  };
}

if (require.main === module) {
  runCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(ExitCode.failure);
    },
  );
}
