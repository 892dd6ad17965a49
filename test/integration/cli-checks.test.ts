/**
 * The CLI and the bins check what was typed before they connect, connect only to what a command
 * needs, name the server and its setting when it does not answer, and name a package that is not
 * installed. Every server setting points at a listener that counts the connections made to it and
 * closes each at once (so a connection fails fast, and one made where none is needed shows).
 * A service without some package is run as a child process whose resolver hides it
 * (test/support/hide-packages.js).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode, runCli, type Io } from '../../workers/cli/cli';
import { STORE_KINDS, pipelineStore, type PipelineStore } from '../support/pipeline-store';
import { binArgs } from '../support/processes';

const EVENT_ID = '01a21b9e-0000-7000-8000-000000000000';
const HIDE_PACKAGES = join(__dirname, '..', 'support', 'hide-packages.js');
/** A registry module of test/fixtures/contracts. */
const CONTRACTS = (file: string): string => join(__dirname, '..', 'fixtures', 'contracts', file);

/** A listener that accepts and at once closes every connection, counting them. */
async function countingListener(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server: Server = createServer((socket) => {
    count += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, connections: () => count, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

interface Run {
  code: number;
  first: string;
}

async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<Run & { out: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), confirm: async () => null };
  const code = await runCli(args, io, env);
  return { code, first: (err.length > 0 ? err : out).join('\n').split('\n')[0] ?? '', out: out.join('\n') };
}

/** A bin run as a process of a service in which `hidden` packages are not installed: its exit code and first line that is not a JSON log line. */
function bin(name: 'txoutbox' | 'relay' | 'worker', args: string[], env: NodeJS.ProcessEnv, hidden: string[] = []): Run {
  const [, tsx, ...rest] = binArgs(name, ...args);
  const run = spawnSync(process.execPath, ['--require', tsx as string, '--require', HIDE_PACKAGES, ...rest], {
    env: { PATH: process.env.PATH, ...env, TXOUTBOX_TEST_HIDDEN_PACKAGES: hidden.join(',') },
    encoding: 'utf8',
    timeout: 60_000,
  });
  // The processes' JSON log lines (health port, start) are not what the test looks for.
  const lines = `${run.stderr}\n${run.stdout}`.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('{'));
  return { code: run.status ?? -1, first: lines[0] ?? '' };
}

describe('the CLI and the bins check what was typed before they connect', () => {
  let listener: Awaited<ReturnType<typeof countingListener>>;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    listener = await countingListener();
    const at = `127.0.0.1:${listener.port}`;
    env = {
      TXOUTBOX_STORE: 'postgres',
      TXOUTBOX_PG_URL: `postgres://txoutbox:secret@${at}/txoutbox`,
      TXOUTBOX_TEMPORAL_ADDRESS: at,
      TXOUTBOX_KAFKA_BROKERS: at,
    };
  });

  afterAll(async () => {
    await listener.close();
  });

  // [what was typed, exit code, the first line it prints]: none of them connects to anything.
  const checkedFirst: Array<[string[], number, string | RegExp]> = [
    [['frobnicate'], ExitCode.usage, 'txoutbox: unknown command "frobnicate"'],
    [[], ExitCode.usage, 'usage: txoutbox <command> [options]'],
    [['help'], ExitCode.ok, 'usage: txoutbox <command> [options]'],
    [['--help'], ExitCode.ok, 'usage: txoutbox <command> [options]'],
    [['help', 'migrate'], ExitCode.ok, 'usage: txoutbox migrate [--partitions N]'],
    [['migrate', '--help'], ExitCode.ok, 'usage: txoutbox migrate [--partitions N]'],
    [['setup', '--help'], ExitCode.ok, 'usage: txoutbox migrate [--partitions N]'],
    [['help', 'frobnicate'], ExitCode.usage, 'txoutbox: unknown command "frobnicate"'],
    [['list', '--colour', 'red'], ExitCode.usage, /^txoutbox: Unknown option '--colour'/],
    [['show', 'nope'], ExitCode.usage, 'show needs an event id (a UUIDv7), got "nope"'],
    [['retry'], ExitCode.usage, 'retry needs an event id (a UUIDv7), got ""'],
    [['discard', EVENT_ID], ExitCode.usage, 'discard needs --reason "..." (it is kept with the event)'],
    [['purge'], ExitCode.usage, 'purge needs --published-older-than (e.g. 7d, 12h)'],
    [['purge', '--published-older-than', 'a week', '--yes'], ExitCode.usage, 'a duration looks like 7d, 12h, 30m or 45s, got "a week"'],
    [['list', '--limit', 'lots'], ExitCode.usage, '--limit must be a whole number from 1 to 10000'],
    [['list', '--status', 'lost'], ExitCode.usage, /^--status must be one of/],
    [['list', '--type', 'not a type!'], ExitCode.usage, /is not an event type name/],
    [['replay', '--from', 'yesterday', '--to', 'now'], ExitCode.usage, '--from needs an ISO-8601 time, got "yesterday"'],
    [['retry', EVENT_ID, '--timeout', 'soon'], ExitCode.usage, 'a duration looks like 7d, 12h, 30m or 45s, got "soon"'],
    [['migrate', '--partitions', '0'], ExitCode.usage, /^--partitions/],
    [['create-topics'], ExitCode.usage, /^create-topics needs topic names/],
    [['create-topics', 'bad topic!'], ExitCode.usage, /bad topic!/],
    [['config'], ExitCode.ok, '# txoutbox configuration (environment variables)'],
    [['contracts'], ExitCode.usage, 'contracts needs the registry module: --module FILE, or TXOUTBOX_CONTRACTS_MODULE'],
    [['contracts', 'publish'], ExitCode.usage, 'contracts takes no argument but "check", got "publish"'],
    [['contracts', '--module', CONTRACTS('orders.js'), '--against', 'c.json'], ExitCode.usage, '--against goes with `contracts check`'],
    [['contracts', '--module', CONTRACTS('missing.js')], ExitCode.usage, /^INVALID_CONFIG: TXOUTBOX_CONTRACTS_MODULE \(.*missing\.js\) cannot be loaded/],
    [['contracts', '--module', CONTRACTS('orders.js')], ExitCode.ok, 'orders.OrderPlaced  (topic orders.v1, aggregate order, ordering none, published as v2)'],
    [['contracts', 'check', '--module', CONTRACTS('orders.js')], ExitCode.ok, 'contracts check: 1 type(s), 2 version(s): each keeps the compatibility it promises'],
    [['contracts', 'check', '--module', CONTRACTS('orders-breaking.js')], ExitCode.failure, /^INCOMPATIBLE_SCHEMA: orders.OrderPlaced v2 breaks its FULL compatibility with v1: \$\.currency: required by the reader/],
  ];

  test.each(checkedFirst)('txoutbox %j: exit %i, "%s", and no connection', async (args, code, first) => {
    const before = listener.connections();

    const run = await cli(args, env);

    expect(run.code).toBe(code);
    if (typeof first === 'string') expect(run.first).toBe(first);
    else expect(run.first).toMatch(first);
    expect(listener.connections()).toBe(before);
  });

  test('contracts: the changelog lists versions, changes and deprecated fields; check --against refuses a published version that changed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'txoutbox-contracts-'));
    try {
      const text = await cli(['contracts', '--module', CONTRACTS('orders.js')], env);
      expect(text.out.split('\n')).toEqual([
        'orders.OrderPlaced  (topic orders.v1, aggregate order, ordering none, published as v2)',
        '  v1',
        '      orderId: string',
        '      customerId: string (deprecated)',
        '      totalCents: integer',
        '  v2  FULL compatible with v1; upcast from v1',
        '      + currency: string',
        '      deprecated: customerId',
      ]);
      const json = await cli(['contracts', '--json', '--module', CONTRACTS('orders.js')], env);
      expect(JSON.parse(json.out)).toMatchObject({ types: [{ type: 'orders.OrderPlaced', publishedAs: 2, versions: [{ version: 1, deprecated: ['$.customerId'] }, { version: 2, upcastFrom: 1, changes: [{ kind: 'added', path: '$.currency' }] }] }] });
      const published = join(dir, 'contracts.json');
      writeFileSync(published, json.out);

      const same = await cli(['contracts', 'check', '--module', CONTRACTS('orders.js'), '--against', published], env);
      const edited = await cli(['contracts', 'check', '--module', CONTRACTS('orders-edited.js'), '--against', published], env);

      expect(same.code).toBe(ExitCode.ok);
      expect(edited.code).toBe(ExitCode.failure);
      expect(edited.first).toBe('orders.OrderPlaced v1 changed since it was published (~ totalCents: integer -> number): publish the change as v3');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a bad setting is a usage failure naming the variable, before any connection', async () => {
    const before = listener.connections();

    const run = await cli(['list'], { ...env, TXOUTBOX_STORE: 'mysql' });
    const effective = await cli(['config', '--effective'], { ...env, TXOUTBOX_KAFKA_BROKERS: '' , TXOUTBOX_LOG_LEVEL: 'loud' });

    expect(run).toMatchObject({ code: ExitCode.usage, first: expect.stringMatching(/^INVALID_CONFIG: TXOUTBOX_STORE/) });
    expect(effective).toMatchObject({ code: ExitCode.usage, first: expect.stringMatching(/^INVALID_CONFIG: TXOUTBOX_LOG_LEVEL/) });
    expect(listener.connections()).toBe(before);
  });

  // [what was typed, the first line]: each connects to the one server it needs, which does not answer.
  const unreachable: Array<[string[], (port: number) => string]> = [
    [['list'], (port) => `txoutbox: cannot reach PostgreSQL (TXOUTBOX_PG_URL): postgres://txoutbox:[redacted]@127.0.0.1:${port}/txoutbox: `],
    [['migrate'], (port) => `txoutbox: cannot reach PostgreSQL (TXOUTBOX_PG_URL): postgres://txoutbox:[redacted]@127.0.0.1:${port}/txoutbox: `],
    [['show', EVENT_ID], (port) => `txoutbox: cannot reach PostgreSQL (TXOUTBOX_PG_URL): postgres://txoutbox:[redacted]@127.0.0.1:${port}/txoutbox: `],
    [['register-search-attributes'], (port) => `txoutbox: cannot reach Temporal at 127.0.0.1:${port} (TXOUTBOX_TEMPORAL_ADDRESS): `],
    [['create-topics', 'orders'], (port) => `txoutbox: cannot reach Kafka at 127.0.0.1:${port} (TXOUTBOX_KAFKA_BROKERS): `],
  ];

  test.each(unreachable)('txoutbox %j with its server down: exit 1, naming the server and its setting', async (args, first) => {
    const run = await cli(args, env);

    expect(run.code).toBe(ExitCode.failure);
    expect(run.first.startsWith(first(listener.port))).toBe(true);
  });

  test('a settings file gives the settings the variables do not set, and a bad one is named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'txoutbox-settings-'));
    const good = join(dir, 'txoutbox.json');
    const bad = join(dir, 'bad.json');
    writeFileSync(good, JSON.stringify({ TXOUTBOX_STORE: 'mongodb', TXOUTBOX_TASK_QUEUE: 'from-file', TXOUTBOX_PARTITIONS: 32 }));
    writeFileSync(bad, JSON.stringify({ TXOUTBOX_STOR: 'mongodb' }));

    const fromFile = await cli(['config', '--effective', '--config', good, '--json'], { TXOUTBOX_TASK_QUEUE: 'from-env' });
    const fromVariable = await cli(['config', '--effective'], { TXOUTBOX_CONFIG: good });
    const misspelt = await cli(['config', '--effective', '--config', bad], {});

    expect(JSON.parse(fromFile.out)).toMatchObject({ store: 'mongodb', taskQueue: 'from-env', partitions: 32 });
    expect(JSON.parse(fromVariable.out)).toMatchObject({ store: 'mongodb', taskQueue: 'from-file' });
    expect(misspelt).toMatchObject({ code: ExitCode.usage, first: `INVALID_CONFIG: settings file ${bad}: "TXOUTBOX_STOR" is not a txoutbox setting (txoutbox config lists them)` });
  });

  // [bin, what was typed, hidden packages, exit code, first line]: a service without some package.
  const service: Array<[string, 'txoutbox' | 'relay' | 'worker', string[], string[], number, string | RegExp]> = [
    ['kafkajs is missing: create-topics names it', 'txoutbox', ['create-topics', 'orders'], ['kafkajs'], ExitCode.usage, 'txoutbox: create-topics needs this package next to txoutbox: npm install kafkajs'],
    ['the Temporal SDK is missing: show names it', 'txoutbox', ['show', EVENT_ID], ['@temporalio/client', '@temporalio/workflow'], ExitCode.usage, 'txoutbox: show needs these packages next to txoutbox: npm install @temporalio/client @temporalio/workflow'],
    ['pg is missing: migrate names it', 'txoutbox', ['migrate'], ['pg'], ExitCode.usage, 'txoutbox: TXOUTBOX_STORE=postgres needs this package next to txoutbox: npm install pg'],
    [
      'a service that only writes events: list loads neither the Temporal SDK nor kafkajs',
      'txoutbox',
      ['list'],
      ['@temporalio/client', '@temporalio/common', '@temporalio/workflow', 'kafkajs'],
      ExitCode.failure,
      /^txoutbox: cannot reach PostgreSQL \(TXOUTBOX_PG_URL\)/,
    ],
    ['the relay answers --help', 'relay', ['--help'], [], ExitCode.ok, 'usage: txoutbox-relay [--config FILE] [--help] [--version]'],
    ['the worker answers --version', 'worker', ['--version'], [], ExitCode.ok, /^\d+\.\d+\.\d+/],
    ['the relay refuses an argument it does not take', 'relay', ['--frobnicate'], [], ExitCode.usage, /^txoutbox-relay: Unknown option '--frobnicate'/],
    ['pg is missing: the relay names it', 'relay', [], ['pg'], ExitCode.usage, 'txoutbox relay: TXOUTBOX_STORE=postgres needs this package next to txoutbox: npm install pg'],
    ['the CLI answers --version', 'txoutbox', ['--version'], [], ExitCode.ok, /^\d+\.\d+\.\d+/],
  ];

  test.each(service)('%s', (_, name, args, hidden, code, first) => {
    const run = bin(name, args, { ...env, TXOUTBOX_HEALTH_PORT: '0' }, hidden);

    expect(run.code).toBe(code);
    if (typeof first === 'string') expect(run.first).toBe(first);
    else expect(run.first).toMatch(first);
  });
});

describe.each(STORE_KINDS)('txoutbox status with Temporal down (%s store)', (kind) => {
  let db: PipelineStore;

  beforeAll(async () => {
    db = pipelineStore(kind);
    await db.setup();
  });

  afterAll(async () => {
    await db.teardown();
  });

  test("shows the store's counts and says that Temporal does not answer, naming its setting", async () => {
    const listener = await countingListener();
    try {
      const run = await cli(['status'], { ...db.env, TXOUTBOX_TEMPORAL_ADDRESS: `127.0.0.1:${listener.port}` });

      expect(run.code).toBe(ExitCode.ok);
      expect(run.out).toMatch(/^pending {6}0$/m);
      expect(run.out).toContain(`temporal: cannot reach Temporal at 127.0.0.1:${listener.port} (TXOUTBOX_TEMPORAL_ADDRESS): `);
      expect(run.out).toContain("(the counts above are the store's alone)");
    } finally {
      await listener.close();
    }
  });
});
