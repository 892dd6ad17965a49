/**
 * The relay and the worker as the processes a user runs (workers/bin), for the tests of their start,
 * stop and configuration: their JSON log lines, the health port they chose, their exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { waitFor } from './servers';

export interface OutboxProcess {
  child: ChildProcess;
  /** Log lines (stderr), as they came. */
  logs: string[];
  /** The health port it listens on (TXOUTBOX_HEALTH_PORT=0 lets it choose). */
  port: Promise<number>;
  exited: Promise<number | null>;
}

/** The settings a relay or worker process needs to run on a test pipeline's servers, store and task queue. */
export function pipelineProcessEnv(p: { db: { env: Record<string, string> }; servers: { temporalAddress: string }; taskQueue: string }): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...p.db.env,
    TXOUTBOX_TEMPORAL_ADDRESS: p.servers.temporalAddress,
    TXOUTBOX_TASK_QUEUE: p.taskQueue,
    TXOUTBOX_HEALTH_PORT: '0',
    TXOUTBOX_LOG_LEVEL: 'info',
  };
}

/**
 * node's arguments that run one of the package's bins from its TypeScript source, through tsx (the
 * installed package runs the same file compiled to dist/, as the consumer-project test checks).
 */
export function binArgs(bin: 'relay' | 'worker' | 'txoutbox', ...args: string[]): string[] {
  return ['--require', require.resolve('tsx/cjs'), join(__dirname, '..', '..', 'workers', 'bin', `${bin}.ts`), ...args];
}

export function startOutboxProcess(role: 'relay' | 'worker', env: NodeJS.ProcessEnv): OutboxProcess {
  const child = spawn(process.execPath, binArgs(role), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  let resolvePort: (port: number) => void = () => undefined;
  const port = new Promise<number>((resolve) => (resolvePort = resolve));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.split('\n').filter(Boolean)) {
      logs.push(line);
      const match = line.includes('"msg":"health endpoints listening"') ? /"port":(\d+)/.exec(line) : null;
      if (match) resolvePort(Number(match[1]));
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, logs, port, exited };
}

/** Resolves once the process answers /readyz with 200. */
export async function readyProcess(process: OutboxProcess): Promise<void> {
  const port = await process.port;
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, { what: 'the process to be ready' });
}
