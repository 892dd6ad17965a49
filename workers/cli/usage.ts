/** The CLI's commands: what each takes, what it connects to, and the usage and help texts made from them. */
import type { OutboxStatus } from '../../domain/outbox';

/** A server a command connects to. */
export type Server = 'store' | 'temporal' | 'kafka';

export interface CommandSpec {
  /** The command's line in the usage: its name and arguments, then what it does. */
  usage: readonly string[];
  /** The servers it connects to (only these: a command connects to nothing before it runs). */
  connects: readonly Server[];
  /** The peer packages it loads, checked before it runs. */
  peers: readonly string[];
}

const TEMPORAL_CLIENT = ['@temporalio/client', '@temporalio/common', '@temporalio/workflow'] as const;

export const COMMANDS = {
  status: {
    usage: ['status [--watch [--interval 2s]]        counts by status, oldest pending age; --watch: a live view;', '                                        says whether Temporal answers (its part is optional)'],
    connects: ['store'],
    peers: [],
  },
  list: { usage: ['list [--status S] [--type T] [--limit N]  events, oldest first (default: --status stuck)'], connects: ['store'], peers: [] },
  show: { usage: ['show <eventId>                          envelope, workflow state, history summary, Web UI link'], connects: ['store', 'temporal'], peers: TEMPORAL_CLIENT },
  retry: { usage: ['retry <eventId>                         publish a stuck event again, with a fresh attempt budget'], connects: ['store', 'temporal'], peers: TEMPORAL_CLIENT },
  compensate: { usage: ['compensate <eventId> [--reason R]       run the compensation of a stuck event\'s type   (asks; --yes)'], connects: ['store', 'temporal'], peers: TEMPORAL_CLIENT },
  discard: {
    usage: [
      'discard <eventId> --reason R            drop a stuck event, keeping the reason          (asks; --yes)',
      '                                        retry, compensate, discard: --timeout 2m (default) for the',
      '                                        workflow to carry the action out',
    ],
    connects: ['store', 'temporal'],
    peers: TEMPORAL_CLIENT,
  },
  replay: { usage: ['replay <eventId> | --from T --to T      publish published events again, same event id  (asks; --yes)'], connects: ['store', 'temporal'], peers: TEMPORAL_CLIENT },
  purge: { usage: ['purge --published-older-than 7d         delete published events older than that        (asks; --yes)'], connects: ['store'], peers: [] },
  migrate: {
    usage: [
      'migrate [--partitions N]                create or update the store\'s tables or collections and',
      '                                        indexes; only what is missing, safe on a live database',
      '                                        (`setup` is the same command); N: the outbox\'s partition',
      '                                        count, set by the first migrate and fixed after (default 16)',
    ],
    connects: ['store'],
    peers: [],
  },
  'register-search-attributes': { usage: ['register-search-attributes              add the outbox\'s search attributes to the namespace'], connects: ['temporal'], peers: ['@temporalio/client', '@temporalio/common'] },
  'create-topics': {
    usage: [
      'create-topics <topic>... [--partitions N] [--replication-factor N]',
      '                                        create the topics that are missing, and the dead-letter',
      '                                        topic (TXOUTBOX_DEAD_LETTER_TOPIC); N: the broker\'s default',
    ],
    connects: ['kafka'],
    peers: ['kafkajs'],
  },
  config: {
    usage: ['config [--effective]                    print the TXOUTBOX_* variables and their defaults;', '                                        --effective: the loaded values, secrets redacted'],
    connects: [],
    peers: [],
  },
  contracts: {
    usage: [
      'contracts [check] [--module FILE] [--against FILE]',
      '                                        the event contracts of the registry module (--module, or',
      '                                        TXOUTBOX_CONTRACTS_MODULE): types, versions, compatibility,',
      '                                        deprecated fields, changes (--json: for a changelog);',
      '                                        check: exit 1 if a version breaks its compatibility, or',
      '                                        if a version of --against (an earlier --json) changed',
      '                                        or was removed',
    ],
    connects: [],
    peers: [],
  },
  help: { usage: ['help [command]                          this text, or one command\'s'], connects: [], peers: [] },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

/** `setup` is `migrate`'s other name. */
export function commandNamed(name: string): CommandName | undefined {
  const canonical = name === 'setup' ? 'migrate' : name;
  return Object.hasOwn(COMMANDS, canonical) ? (canonical as CommandName) : undefined;
}

const SERVERS: Record<Server, string> = {
  store: 'the outbox store (TXOUTBOX_STORE, with TXOUTBOX_MONGODB_URI or TXOUTBOX_PG_URL)',
  temporal: 'Temporal (TXOUTBOX_TEMPORAL_ADDRESS, TXOUTBOX_TEMPORAL_NAMESPACE)',
  kafka: 'Kafka (TXOUTBOX_KAFKA_BROKERS)',
};

const FOOTER = `options: --json (machine-readable output), --yes (no confirmation prompt), --help (a command's help)
settings: the TXOUTBOX_* variables (txoutbox config lists them), or a JSON file of them named by
          --config FILE or TXOUTBOX_CONFIG (the variables win)
exit codes: 0 done, 1 failure, 2 usage, 3 not found, 4 refused by the event's state`;

export const USAGE = `usage: txoutbox <command> [options]

${Object.values(COMMANDS)
  .flatMap((c) => c.usage.map((line) => `  ${line}`))
  .join('\n')}

${FOOTER}`;

/** One command's help: its usage lines, what it connects to, the common options. */
export function commandHelp(name: CommandName): string {
  const spec: CommandSpec = COMMANDS[name];
  const connects = spec.connects.length === 0 ? 'nothing' : spec.connects.map((s) => SERVERS[s]).join('; ');
  return [`usage: txoutbox ${spec.usage[0]?.split(/ {2,}/)[0] ?? name}`, '', ...spec.usage.map((line) => `  ${line}`), '', `connects to: ${connects}`, '', FOOTER].join('\n');
}

export const STATUSES: readonly OutboxStatus[] = ['pending', 'published', 'stuck', 'compensated', 'discarded'];
