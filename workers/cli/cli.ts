/**
 * `txoutbox`: the operator's command line. Reads the same TXOUTBOX_* settings as the relay and the
 * worker (workers/process/config.ts). Exit codes: 0 done, 1 failure (a server, the store), 2 usage (bad
 * arguments, missing confirmation), 3 not found, 4 refused (the action does not fit the event's state).
 */
import { parseArgs } from 'node:util';
import { OutboxError, checkPartitionCount, isEventId } from '../../domain/outbox';
import { CONFIG_TEMPLATE, loadConfig, redactConfig } from '../process/config';
import { connect, type Context } from './connect';
import { list, show } from './events';
import { CliError, ExitCode, processIo, type Io, type Print } from './io';
import { operate, purge, replay } from './operate';
import { createTopics, migrate, registerSearchAttributes } from './setup';
import { status, watch } from './status';
import { USAGE } from './usage';

export { ExitCode, type Io } from './io';
export { listAll } from './events';

/** The options every command may take (each command reads those it uses). */
const OPTIONS = {
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
} as const;

type Parsed = ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; strict: true; options: typeof OPTIONS }>>;
type CliValues = Parsed['values'];

export async function runCli(argv: string[], io: Io = processIo(), env: NodeJS.ProcessEnv = process.env): Promise<ExitCode> {
  let parsed: Parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
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
  if (command === 'config') return printConfig(values, io, env);
  const print = (human: string, json: unknown): void => io.out(values.json ? JSON.stringify(json, null, 2) : human);

  let ctx: Context | undefined;
  try {
    const needsEventId = ['show', 'retry', 'compensate', 'discard'].includes(command) || (command === 'replay' && !values.from);
    const eventId = rest[0];
    if (needsEventId && (eventId === undefined || !isEventId(eventId))) {
      throw new CliError(`${command} needs an event id (a UUIDv7), got ${JSON.stringify(eventId ?? '')}`, ExitCode.usage);
    }
    const config = loadConfig(env);
    if (command === 'setup' || command === 'migrate') return await migrate({ ...config, partitions: partitionsOption(values, config.partitions) }, print);
    if (command === 'create-topics') return await createTopics(config, rest, values, print);
    if (command === 'register-search-attributes') return await registerSearchAttributes(config, print);
    ctx = await connect(config);
    return await runOnOutbox(ctx, command, eventId, values, io, print);
  } catch (err) {
    return failed(err, io);
  } finally {
    await ctx?.close();
  }
}

/** `config`: the template of every variable, or with --effective the loaded values (secrets redacted). */
function printConfig(values: CliValues, io: Io, env: NodeJS.ProcessEnv): ExitCode {
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

/** migrate --partitions N: the outbox's partition count, at its first set-up (TXOUTBOX_PARTITIONS). */
function partitionsOption(values: CliValues, configured: number | null): number | null {
  try {
    return values.partitions === undefined ? configured : checkPartitionCount(Number(values.partitions));
  } catch (err) {
    throw new CliError(`--${err instanceof Error ? err.message : String(err)} (${JSON.stringify(values.partitions)})`, ExitCode.usage);
  }
}

/** The commands that read or act on the outbox's events, connected to the store and Temporal. */
async function runOnOutbox(ctx: Context, command: string, eventId: string | undefined, values: CliValues, io: Io, print: Print): Promise<ExitCode> {
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
}

/** A command's failure as its message and exit code. */
function failed(err: unknown, io: Io): ExitCode {
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
