/** The commands that set the store and Temporal up for the outbox: `migrate`, `register-search-attributes` (`create-topics` is in topics.ts). */
import type { TxoutboxConfig } from '../process/config';
import { connectStore, connectTemporal } from './connect';
import { CliError, ExitCode, type Print } from './io';

/** `migrate` (or `setup`): the store only (no Temporal needed); does what is missing and says what. */
export async function migrate(config: TxoutboxConfig, print: Print): Promise<ExitCode> {
  const { store, close } = await connectStore(config);
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
export async function registerSearchAttributes(config: TxoutboxConfig, print: Print): Promise<ExitCode> {
  // Loaded here: it needs @temporalio/common, which `migrate` does not.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { OutboxSearchAttributes } = require('../../workflows/search-attributes') as typeof import('../../workflows/search-attributes');
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
