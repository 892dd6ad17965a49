/** `status` and `status --watch`: counts by status, the oldest pending event, throughput and lag. */
import { OutboxErrorCode, isOutboxError } from '../../domain/outbox';
import { missingPackages } from '../process/reach';
import { connectTemporal, type Context } from './connect';
import { CliError, ExitCode, type Io, type Print, type Values } from './io';
import { parseDuration } from './parse';
import { STATUSES } from './usage';

export async function status(ctx: Context, print: Print): Promise<ExitCode> {
  const store = await ctx.store();
  const stats = await store.stats();
  const ageMs = stats.oldestPending ? Date.now() - stats.oldestPending.occurredAt.getTime() : null;
  const lines = STATUSES.map((s) => `${s.padEnd(12)} ${stats.counts[s]}`);
  lines.push(`oldest pending: ${stats.oldestPending ? `${stats.oldestPending.id}, ${formatAge(ageMs ?? 0)} old` : 'none'}`);
  // Partitioned relays (issue 17): each partition's owner, lease and backlog, when a relay holds one
  // or the configuration says they are partitioned.
  // An outbox not migrated since partitions came has none to show; its counts are still shown.
  const partitions = await store.partitionStatus(ctx.config.relayName).catch((err: unknown) => {
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
  const temporal = await probeTemporal(ctx);
  lines.push('', temporal.reachable === true ? `temporal: answers at ${temporal.address}` : `temporal: ${temporal.error} (the counts above are the store's alone)`);
  print(lines.join('\n'), {
    temporal,
    counts: stats.counts,
    oldestPendingId: stats.oldestPending?.id ?? null,
    oldestPendingAgeMs: ageMs,
    ...(shown ? { partitions: partitions.map((p) => ({ partition: p.partition, owner: p.owner, leaseExpiresAt: p.expiresAt, pending: p.pending, oldestPendingId: p.oldestPending?.id ?? null })) } : {}),
  });
  return ExitCode.ok;
}

/** Whether Temporal answers: `status` reads the store alone, and says so when Temporal does not answer. */
async function probeTemporal(ctx: Context): Promise<{ address: string; reachable: boolean | null; error: string | null }> {
  const address = ctx.config.temporalAddress;
  if (missingPackages(['@temporalio/client']).length > 0) return { address, reachable: null, error: 'not checked: @temporalio/client is not installed' };
  try {
    await (await connectTemporal(ctx.config, 3_000)).close();
    return { address, reachable: true, error: null };
  } catch (err) {
    return { address, reachable: false, error: err instanceof Error ? err.message : String(err) };
  }
}

const SPARKS = '▁▂▃▄▅▆▇█';

/** A sparkline of the last values (the highest is a full block). */
export function sparkline(values: number[]): string {
  const max = Math.max(...values, 0);
  return values.map((v) => (max === 0 ? SPARKS[0] : SPARKS[Math.min(SPARKS.length - 1, Math.round((v / max) * (SPARKS.length - 1)))])).join('');
}

/** `status --watch`: throughput, lag and stuck count, redrawn every interval (until Ctrl-C). */
export async function watch(ctx: Context, values: Values, io: Io): Promise<ExitCode> {
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
      const stats = await (await ctx.store()).stats();
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


export function formatAge(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)}s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)}m`;
  return `${(ms / 3_600_000).toFixed(1)}h`;
}
