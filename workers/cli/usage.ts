/** The CLI's usage text and the statuses it lists. */
import type { OutboxStatus } from '../../domain/outbox';

export const USAGE = `usage: txoutbox <command> [options]

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

export const STATUSES: readonly OutboxStatus[] = ['pending', 'published', 'stuck', 'compensated', 'discarded'];
