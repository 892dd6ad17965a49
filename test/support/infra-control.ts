/**
 * Stopping, starting and freezing the servers scripts/infra.sh started, for tests of outages (the
 * fault harness, the fast path with Kafka stopped). They must be that script's servers: it has their pids.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const REPO = join(__dirname, '..', '..');
const DATA = process.env.TXOUTBOX_DATA ?? join(REPO, '.data');

/** The pid of a server scripts/infra.sh started; throws when it did not start it. */
export function infraPid(service: 'kafka' | 'temporal' | 'postgres' | 'mongodb'): number {
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

/** Runs scripts/infra.sh without blocking the event loop (the load and the inbox consumer go on meanwhile). */
export async function infra(action: 'up' | 'down', service: string): Promise<void> {
  const child = spawn('bash', [join(REPO, 'scripts', 'infra.sh'), action, service], { env: process.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`scripts/infra.sh ${action} ${service} failed:\n${stderr}`);
}

