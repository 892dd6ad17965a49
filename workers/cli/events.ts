/** `list` and `purge`: the outbox's events as the store has them (no Temporal needed). */
import { TYPE_NAME, type ListQuery, type OutboxEvent, type OutboxStatus } from '../../domain/outbox';
import type { Context } from './connect';
import { CliError, ExitCode, confirmOrRefuse, type Io, type Print, type Values } from './io';
import { parseDuration } from './parse';
import { STATUSES } from './usage';

export async function list(ctx: Context, values: Values, print: Print): Promise<ExitCode> {
  const statusFilter = values.status ?? 'stuck';
  if (!STATUSES.includes(statusFilter as OutboxStatus)) throw new CliError(`--status must be one of ${STATUSES.join(', ')}`, ExitCode.usage);
  const limit = values.limit === undefined ? 50 : Number(values.limit);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) throw new CliError('--limit must be a whole number from 1 to 10000', ExitCode.usage);
  if (values.type !== undefined && !TYPE_NAME.test(values.type)) throw new CliError(`--type ${JSON.stringify(values.type)} is not an event type name (${TYPE_NAME.source})`, ExitCode.usage);
  const store = await ctx.store();
  if (values.type !== undefined) {
    if ((await store.list({ type: values.type, limit: 1 })).length === 0) {
      throw new CliError(`no events of type ${JSON.stringify(values.type)} in the outbox store (in any status)`, ExitCode.notFound);
    }
  }
  const events = await store.list({ status: statusFilter as OutboxStatus, type: values.type, limit });
  const human = events.length === 0 ? `no ${statusFilter} events` : events.map((e) => `${e.id}  ${e.type}  ${e.aggregateId}  attempts=${e.attempts}  ${e.lastError ?? ''}`).join('\n');
  print(human, events.map(summary));
  return ExitCode.ok;
}

/** An event as text lines (`show` without --json): its fields, then its payload as one JSON line. */
export function describeEvent(event: OutboxEvent): string[] {
  return [
    `event ${event.id}: ${event.type} v${event.schemaVersion}, ${event.status}${event.attempts > 0 ? ` after ${event.attempts} attempt(s)` : ''}`,
    `  aggregate ${event.aggregateType} ${event.aggregateId}; topic ${event.topic}, key ${event.key}; occurred at ${event.occurredAt.toISOString()}`,
    ...(event.kafka ? [`  in Kafka at partition ${event.kafka.partition}, offset ${event.kafka.offset}${event.publishedAt ? `, published at ${event.publishedAt.toISOString()}` : ''}`] : []),
    ...(event.lastError ? [`  last error: ${event.lastError}`] : []),
    ...(event.resolution ? [`  ${event.resolution.status}${event.resolution.reason ? `: ${event.resolution.reason}` : ''}`] : []),
    `  payload: ${JSON.stringify(event.payload)}`,
  ];
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

export function summary(e: OutboxEvent) {
  return { id: e.id, type: e.type, aggregateId: e.aggregateId, topic: e.topic, status: e.status, attempts: e.attempts, lastError: e.lastError, occurredAt: e.occurredAt };
}

export async function purge(ctx: Context, values: Values, io: Io, print: Print): Promise<ExitCode> {
  const age = values['published-older-than'];
  if (age === undefined) throw new CliError('purge needs --published-older-than (e.g. 7d, 12h)', ExitCode.usage);
  const ms = parseDuration(age);
  const before = new Date(Date.now() - ms);
  await confirmOrRefuse(io, values, `delete published events published before ${before.toISOString()}?`);
  const deleted = await (await ctx.store()).purgePublished(before);
  print(`purged ${deleted} published event(s) published before ${before.toISOString()}`, { deleted, before: before.toISOString() });
  return ExitCode.ok;
}
