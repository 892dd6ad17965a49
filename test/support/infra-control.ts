/**
 * Stopping, starting and freezing the servers scripts/infra.sh started, for tests of outages (the
 * fault harness, the fast path with Kafka stopped). They must be that script's servers: it has their pids.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REPO = join(__dirname, '..', '..');
const DATA = process.env.TXOUTBOX_DATA ?? join(REPO, '.data');

/** A server scripts/infra.sh runs: one of its services, or one broker of its Kafka cluster. */
export type InfraProcess = 'kafka' | 'temporal' | 'temporal-server' | 'postgres' | 'mongodb' | `kafka-${number}`;

/** The pid of a server scripts/infra.sh started; throws when it did not start it. */
export function infraPid(service: InfraProcess): number {
  const file = join(DATA, 'run', `${service}.pid`);
  const pid = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : NaN;
  let alive = false;
  try {
    alive = Number.isInteger(pid) && process.kill(pid, 0);
  } catch {
    alive = false;
  }
  if (!alive) {
    throw new Error(`tests of outages restart the servers through scripts/infra.sh, but ${service} was not started by it (no live pid in ${file}); run \`bash scripts/infra.sh up\` first`);
  }
  return pid;
}

/**
 * Runs scripts/infra.sh without blocking the event loop (the load and the inbox consumer go on
 * meanwhile), with `env` added to this process's; resolves to what it printed on standard output.
 */
export async function infra(action: 'up' | 'down' | 'env', service: string | readonly string[], env: Record<string, string> = {}): Promise<string> {
  const services = typeof service === 'string' ? [service] : [...service];
  const child = spawn('bash', [join(REPO, 'scripts', 'infra.sh'), action, ...services], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`scripts/infra.sh ${action} ${services.join(' ')} failed:\n${stderr}`);
  return stdout;
}

/** The settings `scripts/infra.sh env` prints (`export NAME=value` lines), as an object. */
export function parseInfraEnv(printed: string): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const match of printed.matchAll(/^export ([A-Z0-9_]+)=(.*)$/gm)) {
    const [, name, raw] = match;
    if (name !== undefined && raw !== undefined) settings[name] = raw.replace(/^'(.*)'$/, '$1');
  }
  return settings;
}

/** The three-broker Kafka cluster of scripts/infra.sh (TXOUTBOX_KAFKA=cluster), for a test that needs it. */
export interface KafkaClusterHandle {
  /** Its bootstrap brokers, all three. */
  brokers: string[];
  /** Broker node id → its bootstrap address ("127.0.0.1:9193"). */
  addressOf(nodeId: number): string;
  /** SIGKILL of broker `nodeId` (1-3). */
  kill9(nodeId: number): void;
  /** SIGSTOP / SIGCONT of broker `nodeId`. */
  freeze(nodeId: number): void;
  thaw(nodeId: number): void;
  /** Starts broker `nodeId` again (when it is down) and waits until it answers. */
  start(nodeId: number): Promise<void>;
  /** Stops broker `nodeId` as an operator would (SIGTERM, controlled shutdown). */
  stop(nodeId: number): Promise<void>;
  /** Stops the brokers this handle started (none when the cluster was already running). */
  release(): Promise<void>;
}

export const CLUSTER_ENV = { TXOUTBOX_KAFKA: 'cluster' } as const;
export const TEMPORAL_SERVER_ENV = { TXOUTBOX_TEMPORAL: 'server' } as const;

/**
 * Brings `services` up with scripts/infra.sh under `env` (reusing what runs): the settings it
 * prints, and a release that stops only what this call started.
 */
export async function useInfra(services: readonly string[], env: Record<string, string>): Promise<{ settings: Record<string, string>; release(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'txoutbox-infra-'));
  const startedFile = join(dir, 'started');
  try {
    const settings = parseInfraEnv(await infra('up', [...services, '--started-file', startedFile], env));
    const started = readFileSync(startedFile, 'utf8').split('\n').filter(Boolean);
    return { settings, release: async () => void (started.length > 0 ? await infra('down', started, env) : undefined) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Starts the cluster (or reuses the one the scripts run) and says how to reach and hurt it. */
export async function useKafkaCluster(): Promise<KafkaClusterHandle> {
  const { settings, release } = await useInfra(['kafka'], CLUSTER_ENV);
  const brokers = (settings.TXOUTBOX_KAFKA_BROKERS ?? '').split(',').filter(Boolean);
  if (brokers.length !== 3) throw new Error(`scripts/infra.sh printed ${brokers.length} cluster brokers, expected 3`);
  const broker = (nodeId: number): `kafka-${number}` => `kafka-${nodeId}`;
  return {
    brokers,
    addressOf: (nodeId) => brokers[nodeId - 1] as string,
    kill9: (nodeId) => process.kill(infraPid(broker(nodeId)), 'SIGKILL'),
    freeze: (nodeId) => process.kill(infraPid(broker(nodeId)), 'SIGSTOP'),
    thaw: (nodeId) => process.kill(infraPid(broker(nodeId)), 'SIGCONT'),
    start: async (nodeId) => void (await infra('up', broker(nodeId), CLUSTER_ENV)),
    stop: async (nodeId) => void (await infra('down', broker(nodeId), CLUSTER_ENV)),
    release,
  };
}
