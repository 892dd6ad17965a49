/**
 * The package as a service gets it: `npm pack` (which builds dist/), then a new project in a
 * temporary folder outside the repository, with its own package.json and strict TypeScript, that
 * installs the tarball and its peers, compiles a small service importing only public entry points
 * (test/fixtures/consumer-service) with moduleResolution node16 and bundler, and runs it end to end
 * on the servers the scripts started: store → relay → worker → Kafka → the service's inbox consumer.
 * Every TypeScript block of the README it ships compiles there, and its quick start runs.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { pipelineStore, STORE_KINDS, type StoreKind } from '../support/pipeline-store';
import { testServers, uniqueName, waitFor } from '../support/servers';

const REPO = join(__dirname, '..', '..');
const FIXTURE = join(REPO, 'test', 'fixtures', 'consumer-service');
const repoPackage = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
  exports: Record<string, unknown>;
  peerDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
/** The peers a full service installs, at the versions this repository is tested with. */
const PEERS = Object.keys(repoPackage.peerDependencies).map((name) => `${name}@${repoPackage.devDependencies[name] ?? repoPackage.peerDependencies[name]}`);

/** Runs a command to its end; a failure throws with everything it printed (tsc prints its errors on stdout). */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  try {
    return execFileSync(command, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}:\n${stdout ?? ''}${stderr ?? ''}`, { cause: err });
  }
}

function newProject(dir: string, name: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name, version: '1.0.0', private: true, type: 'commonjs' }, null, 2)}\n`);
}

function npmInstall(dir: string, packages: string[]): void {
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...packages], dir);
}

/** Paths of every installed copy of `name` under a project's node_modules. */
function copiesOf(project: string, name: string): string[] {
  const found: string[] = [];
  const walk = (modules: string): void => {
    if (!existsSync(modules)) return;
    for (const entry of readdirSync(modules)) {
      const scoped = entry.startsWith('@') ? readdirSync(join(modules, entry)).map((e) => `${entry}/${e}`) : [entry];
      for (const pkg of scoped) {
        const dir = join(modules, pkg);
        if (pkg === name) found.push(dir);
        if (statSync(dir).isDirectory()) walk(join(dir, 'node_modules'));
      }
    }
  };
  walk(join(project, 'node_modules'));
  return found;
}

/** The TypeScript blocks of a README, each a complete file: `readme-<n>.mts` (an ES module, so top-level await is allowed). */
function readmeBlocks(readme: string): Array<{ file: string; code: string }> {
  return [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m, i) => ({ file: `readme-${i + 1}.mts`, code: m[1] ?? '' }));
}

/** The compiler options of a strict service project, for `resolution`: node16 (emitting) or bundler. */
function strictProject(resolution: 'node16' | 'bundler', include: string[]): object {
  const module = resolution === 'node16' ? { module: 'node16', moduleResolution: 'node16', outDir: 'readme-dist' } : { module: 'esnext', moduleResolution: 'bundler', noEmit: true };
  return { compilerOptions: { target: 'ES2022', lib: ['ES2022'], types: ['node'], strict: true, noUncheckedIndexedAccess: true, skipLibCheck: true, ...module }, include };
}

describe('the txoutbox package, installed into a new project', () => {
  const servers = testServers();
  let work: string;
  let tarball: string;
  let packedFiles: string[];
  let service: string;
  const children: ChildProcess[] = [];

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'txoutbox-package-'));
    // npm pack runs the prepack script: the build to dist/.
    const [packed] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], REPO)) as Array<{ filename: string; files: Array<{ path: string }> }>;
    if (!packed) throw new Error('npm pack made no tarball');
    tarball = join(work, packed.filename);
    packedFiles = packed.files.map((f) => f.path);
    service = join(work, 'consumer-service');
    newProject(service, 'consumer-service');
    for (const file of readdirSync(FIXTURE)) copyFileSync(join(FIXTURE, file), join(service, file));
    npmInstall(service, [tarball, ...PEERS, `typescript@${repoPackage.devDependencies.typescript}`, `@types/node@${repoPackage.devDependencies['@types/node']}`, `@types/pg@${repoPackage.devDependencies['@types/pg']}`, `zod@${repoPackage.devDependencies.zod}`]); // zod: the README's contract example
    run('npx', ['tsc', '-p', 'tsconfig.node16.json'], service); // dist/service.js, which the end-to-end tests run
  }, 600_000);

  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the tarball holds the built entry points, their declarations and the bins, and no tests, scripts or TypeScript sources', () => {
    // Assert
    for (const entry of Object.values(repoPackage.exports)) {
      if (typeof entry === 'string') continue; // ./package.json
      const { types, default: js } = entry as { types: string; default: string };
      expect(packedFiles).toEqual(expect.arrayContaining([types.replace(/^\.\//, ''), js.replace(/^\.\//, '')]));
    }
    expect(packedFiles).toEqual(expect.arrayContaining(['dist/workers/bin/txoutbox.js', 'dist/workers/bin/relay.js', 'dist/workers/bin/worker.js', 'dist/workflows/index.js']));
    expect(packedFiles.filter((f) => f.startsWith('test/') || (f.startsWith('scripts/') && !f.startsWith('scripts/observability/')) || f.startsWith('dist/test/') || f.startsWith('dist/scripts/'))).toEqual([]);
    expect(packedFiles).toEqual(expect.arrayContaining(['README.md', 'LICENSE', 'CHANGELOG.md', 'RUNBOOK.md', 'scripts/observability/alerts.yml']));
    expect(packedFiles.filter((f) => f === 'CONTRIBUTING.md' || f === 'ARCHITECTURE.md')).toEqual([]);
    expect(packedFiles.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(packedFiles.filter((f) => f.includes('domain/orders'))).toEqual([]); // the demo's domain
  });

  test('every peer is installed once: the service and txoutbox share one copy of each', () => {
    // Assert
    for (const name of Object.keys(repoPackage.peerDependencies)) expect({ name, copies: copiesOf(service, name).length }).toEqual({ name, copies: 1 });
    expect(copiesOf(service, 'txoutbox')).toHaveLength(1);
  });

  test('a service that only writes events installs no Temporal SDK and no Kafka client, and loads the root and its store entry points', () => {
    // Arrange
    const writer = join(work, 'writer-service');
    newProject(writer, 'writer-service');

    // Act
    npmInstall(writer, [tarball, `mongodb@${repoPackage.devDependencies.mongodb}`]);
    const loaded = run('node', ['-e', "const t = require('txoutbox'); const m = require('txoutbox/mongodb'); console.log(typeof t.createOutbox, typeof m.MongoOutboxStore)"], writer);

    // Assert
    expect(loaded.trim()).toBe('function function');
    for (const name of ['@temporalio/worker', '@temporalio/client', 'kafkajs', 'pg']) expect({ name, copies: copiesOf(writer, name).length }).toEqual({ name, copies: 0 });
  });

  /** The README inside the installed package, its blocks written as files of the service and compiled (node16: to readme-dist/). */
  function compileReadme(resolution: 'node16' | 'bundler'): Array<{ file: string; code: string }> {
    const blocks = readmeBlocks(readFileSync(join(service, 'node_modules', 'txoutbox', 'README.md'), 'utf8'));
    mkdirSync(join(service, 'readme'), { recursive: true });
    for (const block of blocks) writeFileSync(join(service, 'readme', block.file), block.code);
    writeFileSync(join(service, `tsconfig.readme-${resolution}.json`), JSON.stringify(strictProject(resolution, ['readme/*.mts'])));
    run('npx', ['tsc', '-p', `tsconfig.readme-${resolution}.json`], service);
    return blocks;
  }

  /** The installed txoutbox-relay and txoutbox-worker, started with `env`, once both say ready. */
  async function startBins(env: NodeJS.ProcessEnv, label: string): Promise<void> {
    for (const [name, portFile] of [['txoutbox-relay', 'relay.port'], ['txoutbox-worker', 'worker.port']] as const) {
      const file = join(work, `${label}-${portFile}`);
      rmSync(file, { force: true });
      children.push(spawn(join(service, 'node_modules', '.bin', name), [], { cwd: service, env: { ...env, TXOUTBOX_HEALTH_PORT_FILE: file }, stdio: ['ignore', 'ignore', 'inherit'] }));
      await waitFor(async () => existsSync(file) && (await fetch(`http://127.0.0.1:${readFileSync(file, 'utf8').trim()}/readyz`)).status === 200, { what: `${name} to be ready`, timeoutMs: 60_000 });
    }
  }

  /** Stops the bins started (SIGTERM, waiting for each to exit). */
  async function stopBins(): Promise<void> {
    for (const child of children.splice(0)) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  }

  async function deleteTopic(topic: string): Promise<void> {
    const admin = new Kafka({ brokers: servers.kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }

  test.each(['node16', 'bundler'] as const)('every TypeScript block of the README it ships compiles under strict TypeScript with moduleResolution %s', (resolution) => {
    // Act + Assert: tsc exits 0, or compileReadme throws with its errors.
    expect(compileReadme(resolution).length).toBeGreaterThanOrEqual(2);
  });

  test.each(['node16', 'bundler'])('the service compiles under strict TypeScript with moduleResolution %s', (resolution) => {
    // Act + Assert: tsc exits 0, or execFileSync throws with its errors.
    expect(() => run('npx', ['tsc', '--noEmit', '-p', `tsconfig.${resolution}.json`], service)).not.toThrow();
  });

  describe.each(STORE_KINDS)('%s store', (kind: StoreKind) => {
    test.each(['in-process', 'processes'] as const)(
      'its event reaches Kafka and the service consumes it: set up with the installed bin, relay and worker %s',
      async (mode) => {
        // Arrange: a store, task queue and topic of this test, set up with the installed CLI.
        const store = pipelineStore(kind);
        const topic = uniqueName('consumer-service');
        const env: NodeJS.ProcessEnv = {
          ...process.env,
          ...store.env,
          TXOUTBOX_TEMPORAL_ADDRESS: servers.temporalAddress,
          TXOUTBOX_KAFKA_BROKERS: servers.kafkaBrokers.join(','),
          TXOUTBOX_TASK_QUEUE: uniqueName('consumer-service'),
          TXOUTBOX_LOG_LEVEL: 'warn',
          SERVICE_TOPIC: topic,
        };
        const bin = (name: string) => join(service, 'node_modules', '.bin', name);
        try {
          const migrated = run(bin('txoutbox'), ['migrate'], service, env);
          const topics = run(bin('txoutbox'), ['create-topics', topic], service, env);
          if (mode === 'processes') await startBins(env, kind);

          // Act
          const output = run('node', [join('dist', 'service.js'), mode], service, env);

          // Assert
          expect(migrated).toContain('the outbox store is set up');
          expect(topics.trim()).toBe(`${topic}: created`);
          const result = JSON.parse(output.trim().split('\n').pop() ?? '') as { eventId: string; refused: string; status: string; received: { id: string; topic: string; payload: unknown } | null };
          expect(result).toMatchObject({ mode, store: kind, refused: 'INVALID_PAYLOAD', status: 'published' });
          expect(result.received).toEqual({ id: result.eventId, topic, payload: { sku: 'sku-1', quantity: 2 } });
        } finally {
          await stopBins();
          await deleteTopic(topic);
          await store.teardown();
        }
      },
      240_000,
    );

    test("the README's quick start: its file writes an event, the installed relay and worker publish it, and txoutbox show says so", async () => {
      // Arrange: the quick start's file for this store, compiled; the store set up and the topic created with the installed CLI; the bins running.
      const heading = `// place-order.ts (${kind === 'mongodb' ? 'MongoDB' : 'PostgreSQL'})`;
      const quickStart = compileReadme('node16').find((block) => block.code.startsWith(heading));
      if (quickStart === undefined) throw new Error(`the README has no block starting with ${heading}`);
      const store = pipelineStore(kind);
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        ...store.env,
        TXOUTBOX_TEMPORAL_ADDRESS: servers.temporalAddress,
        TXOUTBOX_KAFKA_BROKERS: servers.kafkaBrokers.join(','),
        TXOUTBOX_TASK_QUEUE: uniqueName('quick-start'),
        TXOUTBOX_LOG_LEVEL: 'warn',
      };
      const txoutbox = (...args: string[]): string => run(join(service, 'node_modules', '.bin', 'txoutbox'), args, service, env);
      try {
        txoutbox('migrate');
        txoutbox('create-topics', 'orders.v1');
        await startBins(env, `quick-start-${kind}`);

        // Act
        const output = run('node', [join('readme-dist', quickStart.file.replace(/\.mts$/, '.mjs'))], service, env);
        const eventId = /^event (\S+) written/m.exec(output)?.[1] ?? '';
        const shown = await waitFor(
          () => {
            const json = JSON.parse(txoutbox('show', eventId, '--json')) as { event: { status: string }; webUi: string };
            return json.event.status === 'published' ? json : undefined;
          },
          { timeoutMs: 120_000, intervalMs: 1_000, what: `event ${eventId} published` },
        );

        // Assert
        expect(shown.event).toMatchObject({ id: eventId, type: 'orders.OrderPlaced', topic: 'orders.v1', status: 'published', kafka: { partition: expect.any(Number) } });
        expect(shown.webUi).toContain(`/workflows/outbox-${eventId}`);
      } finally {
        await stopBins();
        await deleteTopic('orders.v1');
        await store.teardown();
      }
    }, 300_000);
  });
});
