/** `create-topics`: the topics a service publishes to, and its dead-letter topic. */
import { Kafka, logLevel as kafkaLogLevel } from 'kafkajs';
import { checkTopicName } from '../../domain/outbox';
import { kafkaClientConfig, type TxoutboxConfig } from '../process/config';
import { createTopicsWithLeaders } from '../kafka/topics';
import { reach } from '../process/reach';
import { CliError, ExitCode, type Print, type Values } from './io';

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
  await reach(`Kafka at ${config.kafkaBrokers.join(',')}`, 'TXOUTBOX_KAFKA_BROKERS', () => admin.connect());
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
