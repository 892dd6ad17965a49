/** The commands that set the servers up for the outbox: `migrate`, `register-search-attributes`, `create-topics`. */
import { Kafka, logLevel as kafkaLogLevel } from 'kafkajs';
import { checkTopicName } from '../../domain/outbox';
import { OutboxSearchAttributes } from '../../workflows/search-attributes';
import { kafkaClientConfig, type TxoutboxConfig } from '../process/config';
import { storeFromConfig } from '../process/store-from-config';
import { connectTemporal } from './connect';
import { CliError, ExitCode, type Print, type Values } from './io';
import { createTopicsWithLeaders } from '../kafka/topics';

/** `migrate` (or `setup`): the store only (no Temporal needed); does what is missing and says what. */
export async function migrate(config: TxoutboxConfig, print: Print): Promise<ExitCode> {
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
export async function registerSearchAttributes(config: TxoutboxConfig, print: Print): Promise<ExitCode> {
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
export async function createTopics(config: TxoutboxConfig, topics: string[], values: Values, print: Print): Promise<ExitCode> {
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
      await createTopicsWithLeaders(admin, missing.map((topic) => ({ topic, numPartitions, replicationFactor })));
    }
    const lines = wanted.map((topic) => `${topic}: ${missing.includes(topic) ? 'created' : 'exists'}${topic === deadLetter ? ' (dead-letter topic)' : ''}`);
    print(lines.join('\n'), { created: missing, existed: wanted.filter((t) => !missing.includes(t)), deadLetterTopic: deadLetter ?? null });
    return ExitCode.ok;
  } finally {
    await admin.disconnect();
  }
}
