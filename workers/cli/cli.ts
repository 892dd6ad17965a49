/**
 * `txoutbox`: the operator's command line. Reads the same TXOUTBOX_* settings as the relay and the
 * worker (workers/process/config.ts), or a file of them. Exit codes: 0 done, 1 failure (a server,
 * the store), 2 usage (bad arguments, missing confirmation, a package not installed), 3 not found,
 * 4 refused (the action does not fit the event's state).
 *
 * What was typed is checked first, and nothing is connected to or loaded for a command that fails
 * there: each command connects to the servers it needs, on first use (connect.ts), and its module,
 * which may load the Temporal SDK or kafkajs, is loaded only when it runs.
 */
import { parseArgs } from 'node:util';
import { OutboxError, checkPartitionCount, isEventId } from '../../domain/outbox';
import { CONFIG_TEMPLATE, loadConfig, redactConfig, type TxoutboxConfig } from '../process/config';
import { withSettingsFile } from '../process/config-file';
import { MissingPackage, Unreachable, requirePackages } from '../process/reach';
import { openContext, type Context } from './connect';
import { CliError, ExitCode, processIo, type Io, type Print } from './io';
import { COMMANDS, USAGE, commandHelp, commandNamed, type CommandName } from './usage';

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
  config: { type: 'string' },
  module: { type: 'string' },
  against: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

type Parsed = ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; strict: true; options: typeof OPTIONS }>>;
type CliValues = Parsed['values'];

export async function runCli(argv: string[], io: Io = processIo(), env: NodeJS.ProcessEnv = process.env): Promise<ExitCode> {
  let parsed: Parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  } catch (err) {
    io.err(`txoutbox: ${messageOf(err)}\n\n${USAGE}`);
    return ExitCode.usage;
  }
  const { values, positionals } = parsed;
  const [typed, ...rest] = positionals;
  if (typed === undefined || typed === 'help') return help(values.help || typed === 'help', rest[0], io);
  const command = commandNamed(typed);
  if (command === undefined) {
    io.err(`txoutbox: unknown command ${JSON.stringify(typed)}\n\n${USAGE}`);
    return ExitCode.usage;
  }
  if (values.help || command === 'help') return help(true, command, io);
  const print: Print = (human, json) => io.out(values.json ? JSON.stringify(json, null, 2) : human);
  let ctx: Context | undefined;
  try {
    const eventId = checkArguments(command, rest, values);
    const settings = withSettingsFile(env, values.config);
    if (command === 'config') return printConfig(values, settings, io);
    if (command === 'contracts') return load.contracts().contracts(rest[0] === 'check', { module: values.module ?? settings.TXOUTBOX_CONTRACTS_MODULE, against: values.against }, io, print);
    const config = loadConfig(settings);
    requirePackages(command, COMMANDS[command].peers);
    ctx = openContext(config);
    return await run(command, ctx, rest, eventId, values, io, print);
  } catch (err) {
    return failed(err, io);
  } finally {
    await ctx?.close();
  }
}

/** `help`, `help <command>`, `--help`, or no command at all (usage, exit 2). */
function help(asked: boolean, about: string | undefined, io: Io): ExitCode {
  if (!asked) {
    io.err(USAGE);
    return ExitCode.usage;
  }
  if (about === undefined) {
    io.out(USAGE);
    return ExitCode.ok;
  }
  const command = commandNamed(about);
  if (command === undefined) {
    io.err(`txoutbox: unknown command ${JSON.stringify(about)}\n\n${USAGE}`);
    return ExitCode.usage;
  }
  io.out(commandHelp(command));
  return ExitCode.ok;
}

/** The checks of what was typed that need no server: the event id, and the options that must be there. */
function checkArguments(command: CommandName, rest: string[], values: CliValues): string | undefined {
  const needsEventId = ['show', 'retry', 'compensate', 'discard'].includes(command) || (command === 'replay' && !values.from);
  const eventId = rest[0];
  if (needsEventId && (eventId === undefined || !isEventId(eventId))) {
    throw new CliError(`${command} needs an event id (a UUIDv7), got ${JSON.stringify(eventId ?? '')}`, ExitCode.usage);
  }
  if (command === 'discard' && (!values.reason || values.reason.trim() === '')) throw new CliError('discard needs --reason "..." (it is kept with the event)', ExitCode.usage);
  if (command === 'contracts') {
    if (rest.length > 1 || (rest[0] !== undefined && rest[0] !== 'check')) throw new CliError(`contracts takes no argument but "check", got ${JSON.stringify(rest.join(' '))}`, ExitCode.usage);
    if (values.against !== undefined && rest[0] !== 'check') throw new CliError('--against goes with `contracts check`', ExitCode.usage);
  }
  if (command === 'purge' && values['published-older-than'] === undefined) throw new CliError('purge needs --published-older-than (e.g. 7d, 12h)', ExitCode.usage);
  return eventId;
}

/** `config`: the template of every variable, or with --effective the loaded values (secrets redacted). */
function printConfig(values: CliValues, env: NodeJS.ProcessEnv, io: Io): ExitCode {
  io.out(values.effective ? JSON.stringify(redactConfig(loadConfig(env)), null, 2) : CONFIG_TEMPLATE.trimEnd());
  return ExitCode.ok;
}

/** migrate --partitions N: the outbox's partition count, at its first set-up (TXOUTBOX_PARTITIONS). */
function partitionsOption(values: CliValues, configured: number | null): number | null {
  try {
    return values.partitions === undefined ? configured : checkPartitionCount(Number(values.partitions));
  } catch (err) {
    throw new CliError(`--${err instanceof Error ? err.message : String(err)} (${JSON.stringify(values.partitions)})`, ExitCode.usage);
  }
}

/* eslint-disable @typescript-eslint/no-require-imports -- each command's module is loaded when it runs (a require, so tsx runs it too) */
const load = {
  status: () => require('./status') as typeof import('./status'),
  events: () => require('./events') as typeof import('./events'),
  show: () => require('./show') as typeof import('./show'),
  operate: () => require('./operate') as typeof import('./operate'),
  setup: () => require('./setup') as typeof import('./setup'),
  topics: () => require('./topics') as typeof import('./topics'),
  contracts: () => require('./contracts') as typeof import('./contracts'),
};
/* eslint-enable @typescript-eslint/no-require-imports */

/** Runs `command`, its module loaded now (so `list` never loads the Temporal SDK, nor `migrate` kafkajs). */
async function run(command: Exclude<CommandName, 'help' | 'config' | 'contracts'>, ctx: Context, rest: string[], eventId: string | undefined, values: CliValues, io: Io, print: Print): Promise<ExitCode> {
  const config: TxoutboxConfig = ctx.config;
  switch (command) {
    case 'status':
      return values.watch ? await load.status().watch(ctx, values, io) : await load.status().status(ctx, print);
    case 'list':
      return await load.events().list(ctx, values, print);
    case 'purge':
      return await load.events().purge(ctx, values, io, print);
    case 'show':
      return await load.show().show(ctx, eventId as string, print);
    case 'retry':
    case 'compensate':
    case 'discard':
      return await load.operate().operate(ctx, eventId as string, command, values.reason, values, io, print);
    case 'replay':
      return await load.operate().replay(ctx, eventId, values, io, print);
    case 'migrate':
      return await load.setup().migrate({ ...config, partitions: partitionsOption(values, config.partitions) }, print);
    case 'register-search-attributes':
      return await load.setup().registerSearchAttributes(config, print);
    case 'create-topics':
      return await load.topics().createTopics(config, rest, values, print);
  }
}

/** An error's message (parseArgs' errors are of another realm under Jest, so not `instanceof Error`). */
function messageOf(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(err);
}

/** A command's failure as its message and exit code. */
function failed(err: unknown, io: Io): ExitCode {
  if (err instanceof CliError) {
    io.err(err.message);
    return err.exitCode;
  }
  if (err instanceof MissingPackage || err instanceof Unreachable) {
    io.err(`txoutbox: ${err.message}`);
    return err instanceof MissingPackage ? ExitCode.usage : ExitCode.failure;
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
