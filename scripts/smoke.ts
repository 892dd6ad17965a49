/**
 * Smoke run: proves the three servers answer real requests and prints where they are.
 * Run by `npm run demo` until the demo service exists; safe to run any time.
 */
import { Connection } from '@temporalio/client';
import { Kafka, logLevel } from 'kafkajs';
import { Client as PgClient } from 'pg';
import { testServers, uniqueName } from '../test/support/servers';

async function main(): Promise<void> {
  const servers = testServers();

  const connection = await Connection.connect({ address: servers.temporalAddress });
  const info = await connection.workflowService.getSystemInfo({});
  const attributes = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
  await connection.close();

  const kafka = new Kafka({ clientId: 'txoutbox-smoke', brokers: servers.kafkaBrokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = uniqueName('txoutbox-smoke');
  await admin.createTopics({ topics: [{ topic }], waitForLeaders: true });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const [ack] = await producer.send({ topic, acks: -1, messages: [{ key: 'smoke', value: 'ok' }] });
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();

  const pg = new PgClient({ connectionString: servers.pgUrl });
  await pg.connect();
  const { rows } = await pg.query<{ version: string }>('select version()');
  await pg.end();

  const outboxAttributes = Object.keys(attributes.customAttributes).filter((name) => name.startsWith('Outbox'));
  console.log('txoutbox smoke run: all three servers answered');
  console.log(`  Temporal   ${servers.temporalAddress}  server ${info.serverVersion}; search attributes: ${outboxAttributes.join(', ')}`);
  console.log(`  Web UI     ${servers.temporalUiUrl}/namespaces/default/workflows`);
  console.log(`  Kafka      ${servers.kafkaBrokers.join(',')}  produced to ${topic} partition ${ack?.partition} offset ${ack?.baseOffset}`);
  console.log(`  PostgreSQL ${servers.pgUrl.replace(/\/\/[^@]*@/, '//')}  ${rows[0]?.version.split(',')[0]}`);
}

main().catch((err: unknown) => {
  console.error('smoke run failed:', err);
  process.exit(1);
});
