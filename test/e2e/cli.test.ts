/**
 * The operator CLI against the real servers: status, list, show, the operator actions with their
 * confirmations and refusals, replay and purge, exit codes and --json output.
 */
import { spawnSync } from 'node:child_process';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common';
import { Kafka, logLevel } from 'kafkajs';
import { ExitCode, runCli, type Io } from '../../workers/cli/cli';
import { eventWorkflowId } from '../../workers/relay/start-event-workflow';
import { stateQuery } from '../../workflows/signals';
import { TestPipeline } from '../support/pipeline';
import { STORE_KINDS } from '../support/pipeline-store';
import { binArgs } from '../support/processes';
import { testServers, uniqueName, waitFor } from '../support/servers';

interface Run {
  code: number;
  out: string;
  err: string;
}

describe.each(STORE_KINDS)('txoutbox CLI (%s store)', (kind) => {
  let p: TestPipeline;
  let env: NodeJS.ProcessEnv;

  beforeEach(async () => {
    p = await new TestPipeline(kind).setup();
    env = {
      ...p.db.env,
      TXOUTBOX_TEMPORAL_ADDRESS: p.servers.temporalAddress,
      TXOUTBOX_TEMPORAL_UI_URL: p.servers.temporalUiUrl,
      TXOUTBOX_TASK_QUEUE: p.taskQueue,
      TXOUTBOX_KAFKA_BROKERS: p.servers.kafkaBrokers.join(','),
    };
  });

  afterEach(async () => {
    await p.teardown();
  });

  async function cli(args: string[], answer: boolean | null = null): Promise<Run> {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), confirm: async () => answer };
    const code = await runCli(args, io, env);
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  async function oneStuckAndOnePublished(): Promise<{ stuck: string; published: string }> {
    await p.startWorker();
    await p.startRelay(p.relay({ publishPolicy: { initialIntervalMs: 100, maximumIntervalMs: 200, maximumAttempts: 2 } }));
    const published = await p.placeOrder('order-1');
    const stuck = await p.shipOrder('order-2');
    await p.collector.waitForEventIds([published]);
    await waitFor(async () => (await p.client.workflow.getHandle(eventWorkflowId(stuck)).query(stateQuery)).status === 'stuck', { what: 'a stuck event' });
    await p.markedPublished(published);
    return { stuck, published };
  }

  test('status, list --status stuck and show report the store and the workflow', async () => {
    // Arrange
    const { stuck } = await oneStuckAndOnePublished();

    // Act
    const status = await cli(['status', '--json']);
    const list = await cli(['list', '--status', 'stuck', '--type', 'orders.OrderShipped', '--json']);
    const show = await cli(['show', stuck]);

    // Assert
    expect(status.code).toBe(ExitCode.ok);
    expect(JSON.parse(status.out)).toMatchObject({ counts: { pending: 0, published: 1, stuck: 1 }, oldestPendingId: null });
    expect(list.code).toBe(ExitCode.ok);
    expect(JSON.parse(list.out)).toEqual([expect.objectContaining({ id: stuck, status: 'stuck', lastError: expect.stringContaining('does not exist') })]);
    expect(show.code).toBe(ExitCode.ok);
    expect(show.out).toContain(`workflow ${eventWorkflowId(stuck)}: RUNNING`);
    // Text, not a JSON document followed by text lines (--json gives the JSON).
    expect(show.out.split('\n')[0]).toBe(`event ${stuck}: orders.OrderShipped v1, stuck after 1 attempt(s)`);
    expect(show.out).toContain('last error: ');
    expect(show.out).not.toContain('"aggregateId"');
    expect(show.out).toContain(`Web UI: ${p.servers.temporalUiUrl}/namespaces/default/workflows/${eventWorkflowId(stuck)}`);
  });

  test('discard asks first: refused without --yes where there is no terminal, done with --yes', async () => {
    // Arrange
    const { stuck } = await oneStuckAndOnePublished();

    // Act
    const noReason = await cli(['discard', stuck, '--yes']);
    const noTerminal = await cli(['discard', stuck, '--reason', 'test order']);
    const declined = await cli(['discard', stuck, '--reason', 'test order'], false);
    const done = await cli(['discard', stuck, '--reason', 'test order', '--yes']);

    // Assert
    expect([noReason.code, noTerminal.code, declined.code]).toEqual([ExitCode.usage, ExitCode.usage, ExitCode.usage]);
    expect(noReason.err).toContain('discard needs --reason');
    expect(noTerminal.err).toContain('refused without --yes');
    expect(done.code).toBe(ExitCode.ok);
    expect(done.out).toContain('is now discarded');
    expect(await p.store.get(stuck)).toMatchObject({ status: 'discarded', resolution: { reason: 'test order' } });
  });

  test('an action that does not fit the state is refused with exit code 4; unknown ids and event types exit 3; bad arguments exit 2', async () => {
    // Arrange
    const { published } = await oneStuckAndOnePublished();

    // Act
    const retryPublished = await cli(['retry', published]);
    const unknown = await cli(['show', '01a21b9e-0000-7000-8000-000000000000']);
    const notAnId = await cli(['retry', 'order-1']);
    const badLimit = await cli(['list', '--limit', 'lots']);
    const badDuration = await cli(['purge', '--published-older-than', 'a week', '--yes']);
    const unknownType = await cli(['list', '--status', 'published', '--type', 'orders.NoSuchEvent']);
    const malformedType = await cli(['list', '--type', 'not a type!']);
    const knownType = await cli(['list', '--status', 'published', '--type', 'orders.OrderPlaced']);
    const unknownOption = await cli(['list', '--colour', 'red']);
    const unknownCommand = await cli(['publish-everything']);
    const badStatus = await cli(['list', '--status', 'lost']);
    const noReason = await cli(['discard', published, '--yes']);

    // Assert
    expect(retryPublished).toMatchObject({ code: ExitCode.refused, err: expect.stringContaining('is published: retry applies only to a stuck event') });
    expect(unknown.code).toBe(ExitCode.notFound);
    expect(notAnId).toMatchObject({ code: ExitCode.usage, err: expect.stringContaining('needs an event id') });
    expect(badLimit.code).toBe(ExitCode.usage);
    expect(badDuration).toMatchObject({ code: ExitCode.usage, err: expect.stringContaining('a duration looks like 7d') });
    expect(unknownType).toMatchObject({ code: ExitCode.notFound, err: expect.stringContaining('no events of type "orders.NoSuchEvent"') });
    expect(malformedType).toMatchObject({ code: ExitCode.usage, err: expect.stringContaining('is not an event type name') });
    expect(knownType).toMatchObject({ code: ExitCode.ok, out: expect.stringContaining(published) });
    expect(unknownOption.code).toBe(ExitCode.usage);
    expect(unknownCommand).toMatchObject({ code: ExitCode.usage, err: expect.stringContaining('unknown command') });
    expect(badStatus).toMatchObject({ code: ExitCode.usage, err: expect.stringContaining('--status must be one of') });
    expect(noReason).toMatchObject({ code: ExitCode.usage, err: expect.stringContaining('discard needs --reason') });
  });

  test('replay publishes a published event again with the same event id, in a workflow of its own', async () => {
    // Arrange
    const { published } = await oneStuckAndOnePublished();

    // Act
    const run = await cli(['replay', published, '--yes', '--json']);
    await waitFor(() => p.collector.withEventId(published).length === 2, { what: 'the replayed message' });

    // Assert
    expect(run.code).toBe(ExitCode.ok);
    const { replayed } = JSON.parse(run.out) as { replayed: Array<{ workflowId: string }> };
    expect(replayed[0]?.workflowId).toMatch(new RegExp(`^${eventWorkflowId(published)}-replay-`));
    const [first, again] = p.collector.withEventId(published);
    expect(again?.value).toBe(first?.value);
  });

  test('replay of a time range publishes every published event in it, and refuses nothing else', async () => {
    // Arrange
    const from = new Date(Date.now() - 60_000).toISOString();
    const { published } = await oneStuckAndOnePublished();
    const to = new Date(Date.now() + 1_000).toISOString();

    // Act
    const run = await cli(['replay', '--from', from, '--to', to, '--yes', '--json']);
    const badRange = await cli(['replay', '--from', 'yesterday', '--to', to, '--yes']);
    await waitFor(() => p.collector.withEventId(published).length === 2, { what: 'the replayed message' });

    // Assert
    expect(run.code).toBe(ExitCode.ok);
    expect((JSON.parse(run.out) as { replayed: Array<{ eventId: string }> }).replayed.map((r) => r.eventId)).toEqual([published]);
    expect(badRange).toMatchObject({ code: ExitCode.usage, err: expect.stringContaining('--from needs an ISO-8601 time') });
  });

  test('purge deletes published events older than the retention, after confirmation', async () => {
    // Arrange
    const { published, stuck } = await oneStuckAndOnePublished();
    await p.db.setPublishedAt(published, new Date(Date.now() - 8 * 24 * 3600_000));

    // Act
    const run = await cli(['purge', '--published-older-than', '7d', '--yes']);

    // Assert
    expect(run.code).toBe(ExitCode.ok);
    expect(run.out).toContain('purged 1 published event(s)');
    expect(await p.store.get(published)).toBeNull();
    expect(await p.store.get(stuck)).not.toBeNull();
  });

  test('status --watch redraws throughput, lag and stuck count every interval', async () => {
    // Arrange
    await oneStuckAndOnePublished();

    // Act
    const run = await cli(['status', '--watch', '--interval', '1s', '--iterations', '2']);

    // Assert
    expect(run.code).toBe(ExitCode.ok);
    const screens = run.out.split('txoutbox status — ').filter(Boolean);
    expect(screens).toHaveLength(2);
    expect(screens[1]).toMatch(/throughput\s+\d+\.\d events\/s/);
    expect(screens[1]).toMatch(/stuck\s+1 {3}← txoutbox list --status stuck/);
    expect(screens[1]).toMatch(/lag\s+0s/);
  });

  test('config --effective prints the loaded settings with every secret redacted', async () => {
    // Act
    const out: string[] = [];
    const secrets = { TXOUTBOX_PG_URL: 'postgres://app:pg-secret@127.0.0.1:5432/app', TXOUTBOX_KAFKA_SASL_MECHANISM: 'plain', TXOUTBOX_KAFKA_SASL_USERNAME: 'u', TXOUTBOX_KAFKA_SASL_PASSWORD: 'kafka-secret', TXOUTBOX_TEMPORAL_API_KEY: 'tk-secret' };
    const code = await runCli(['config', '--effective'], { out: (l) => out.push(l), err: (l) => out.push(l), confirm: async () => null }, secrets);

    // Assert
    expect(code).toBe(ExitCode.ok);
    const printed = out.join('\n');
    expect(JSON.parse(printed)).toMatchObject({ pgUrl: 'postgres://app:[redacted]@127.0.0.1:5432/app', kafkaSecurity: { sasl: { username: 'u', password: '[redacted]' } }, temporalSecurity: { apiKey: '[redacted]' } });
    for (const secret of ['pg-secret', 'kafka-secret', 'tk-secret']) expect(printed).not.toContain(secret);
  });

  test('the installed bin runs: a bad config value fails at start naming the variable', () => {
    // Act
    const result = spawnSync(process.execPath, binArgs('txoutbox', 'status'), {
      env: { ...process.env, ...env, TXOUTBOX_KAFKA_BROKERS: 'not a broker' },
      encoding: 'utf8',
      timeout: 60_000,
    });

    // Assert
    expect(result.status).toBe(ExitCode.usage);
    expect(result.stderr).toContain('TXOUTBOX_KAFKA_BROKERS must be comma-separated host:port');
  });
});

describe('txoutbox set-up commands (no store)', () => {
  const servers = testServers();
  const base = { TXOUTBOX_TEMPORAL_ADDRESS: servers.temporalAddress, TXOUTBOX_KAFKA_BROKERS: servers.kafkaBrokers.join(',') };

  async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(args, { out: (l) => out.push(l), err: (l) => err.push(l), confirm: async () => null }, env);
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  test('register-search-attributes adds the four Keyword attributes to a namespace that lacks them, and says so; a second run adds nothing', async () => {
    // Arrange: a namespace of its own.
    const namespace = uniqueName('ns');
    const connection = await Connection.connect({ address: servers.temporalAddress });
    try {
      await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
      await waitFor(async () => (await connection.workflowService.describeNamespace({ namespace }).then(() => true, () => false)), { what: 'the namespace' });
      const env = { ...base, TXOUTBOX_TEMPORAL_NAMESPACE: namespace };

      // Act
      const first = await cli(['register-search-attributes'], env);
      const second = await cli(['register-search-attributes', '--json'], env);

      // Assert
      expect(first).toMatchObject({ code: 0, err: '' });
      for (const name of ['OutboxStatus', 'OutboxEventType', 'OutboxAggregateId', 'OutboxTopic']) expect(first.out).toContain(`${name} (Keyword): added`);
      expect(second.code).toBe(0);
      expect(JSON.parse(second.out)).toMatchObject({ namespace, added: [] });
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
      expect(customAttributes).toMatchObject({ OutboxStatus: 2, OutboxEventType: 2, OutboxAggregateId: 2, OutboxTopic: 2 }); // 2: KEYWORD
    } finally {
      await connection.close();
    }
  });

  test('create-topics creates the missing topics and the dead-letter topic with the partitions asked for; a second run creates nothing', async () => {
    // Arrange
    const [orders, payments, deadLetters] = [uniqueName('orders'), uniqueName('payments'), uniqueName('dead-letters')];
    const env = { ...base, TXOUTBOX_DEAD_LETTER_TOPIC: deadLetters };
    const kafka = new Kafka({ brokers: servers.kafkaBrokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      // Act
      const first = await cli(['create-topics', orders, payments, '--partitions', '3'], env);
      const second = await cli(['create-topics', orders, '--json'], env);
      const bad = await cli(['create-topics', 'no spaces'], env);

      // Assert
      expect(first).toMatchObject({ code: 0, out: `${orders}: created\n${payments}: created\n${deadLetters}: created (dead-letter topic)` });
      const { topics } = await admin.fetchTopicMetadata({ topics: [orders, payments, deadLetters] });
      expect(topics.map((t) => t.partitions.length)).toEqual([3, 3, 3]);
      expect(JSON.parse(second.out)).toMatchObject({ created: [], existed: [orders, deadLetters] });
      expect(bad.code).toBe(ExitCode.usage);
    } finally {
      await admin.deleteTopics({ topics: [orders, payments, deadLetters] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});
