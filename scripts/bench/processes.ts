/** The relay and worker processes a row runs, with their CPU and memory read from their own /metrics. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, log, scrapeMetrics, seriesByLabel, values } from './settings';

/** The relay and worker processes running now, stopped if the run fails. */
export const children = new Set<ChildProcess>();

export interface ProcessStats {
  cpuSeconds: number;
  peakRssMb: number;
  /** Requests it sent to its store so far (txoutbox_store_round_trips_total, every command). */
  storeTrips: number;
  /** The same by command (MongoDB's command names, PostgreSQL statements' first words). */
  storeTripsByCommand: Record<string, number>;
}

/**
 * Compiles the package (`npm run build`) once per run: the relay and the worker run as shipped, the
 * compiled bins of dist/ under plain node, not the TypeScript source through tsx (whose module
 * transforms and source maps the first runs paid for inside their rows).
 */
export function buildShipped(): void {
  log('npm run build: the relay and the worker run from dist/, as shipped');
  execFileSync('npm', ['run', '-s', 'build'], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
}

export function startProcess(bin: 'relay' | 'worker', env: NodeJS.ProcessEnv, prefix: string): { child: ChildProcess; port: Promise<number>; stats: () => ProcessStats; sample: () => Promise<void> } {
  // --cpu-prof DIR: V8 CPU profiles of the relay and the worker, written when they exit (scripts/cpu-profile-top.ts reads them).
  const profile = values['cpu-prof'] === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', join(values['cpu-prof'], `${env.TXOUTBOX_TASK_QUEUE ?? 'run'}-${bin}`)];
  const child = spawn(process.execPath, [...profile, join(REPO, 'dist', 'workers', 'bin', `${bin}.js`)], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let resolvePort: (port: number) => void = () => undefined;
  const port = new Promise<number>((resolve) => (resolvePort = resolve));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    // --logs DIR: each process's log, to read what a row did.
    if (values.logs !== '') appendFileSync(join(values.logs, `${env.TXOUTBOX_TASK_QUEUE ?? 'run'}-${bin}.log`), chunk);
    for (const line of chunk.split('\n')) {
      const match = line.includes('health endpoints listening') ? /"port":(\d+)/.exec(line) : null;
      if (match) resolvePort(Number(match[1]));
    }
  });
  let cpuSeconds = 0;
  let peakRssMb = 0;
  let storeTripsByCommand: Record<string, number> = {};
  const sample = async (): Promise<void> => {
    // A process too busy to answer within 5 s keeps its last figures (the run goes on).
    const text = await scrapeMetrics(`http://127.0.0.1:${await port}/metrics`);
    if (text === '') return;
    const read = (name: string): number => Number(new RegExp(`^${prefix}${name} ([0-9.e+]+)`, 'm').exec(text)?.[1] ?? NaN);
    cpuSeconds = read('process_cpu_seconds_total');
    peakRssMb = Math.max(peakRssMb, read('process_resident_memory_bytes') / 1024 / 1024);
    // None counted yet (the series appears with the first request): none.
    storeTripsByCommand = seriesByLabel(text, 'txoutbox_store_round_trips_total', 'command');
  };
  const storeTrips = (): number => Object.values(storeTripsByCommand).reduce((sum, n) => sum + n, 0);
  return { child, port, stats: () => ({ cpuSeconds, peakRssMb, storeTrips: storeTrips(), storeTripsByCommand: { ...storeTripsByCommand } }), sample };
}

/** Stops relay and worker processes (SIGTERM) and resolves once each has exited. */
export async function stopProcesses(processes: ReadonlyArray<ReturnType<typeof startProcess>>): Promise<void> {
  for (const p of processes) p.child.kill('SIGTERM');
  await Promise.all(processes.map((p) => new Promise((resolve) => (p.child.exitCode === null ? p.child.once('exit', resolve) : resolve(null)))));
}

/** Resolves once a relay or worker process answers /readyz (within 120 s of its start). */
export async function ready(p: ReturnType<typeof startProcess>): Promise<void> {
  const readyBy = Date.now() + 120_000;
  const port = await Promise.race([p.port, new Promise<number>((_, reject) => setTimeout(() => reject(new Error('relay/worker did not start within 120 s')), 120_000))]);
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > readyBy) throw new Error('relay/worker not ready within 120 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
