/**
 * A relay or worker process of the fault harness (workers/bin), restartable and killable, its output
 * in a log file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { binArgs } from '../support/processes';
import { waitFor } from '../support/servers';

/** A relay or worker process (workers/bin), restartable, killable. */
export class ManagedProcess {
  private child: ChildProcess | undefined;
  private exit: Promise<void> = Promise.resolve();
  starts = 0;

  constructor(
    readonly role: 'relay' | 'worker',
    private readonly env: NodeJS.ProcessEnv,
    private readonly logFile: string,
  ) {}

  async start(): Promise<void> {
    const log = createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(process.execPath, binArgs(this.role), {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.starts += 1;
    this.exit = new Promise((resolve) => child.once('exit', () => resolve()));
    let port: number | undefined;
    child.stdout?.pipe(log, { end: false });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      log.write(chunk);
      for (const line of chunk.split('\n')) {
        const match = line.includes('health endpoints listening') ? /"port":(\d+)/.exec(line) : null;
        if (match) port = Number(match[1]);
      }
    });
    let exited = false;
    void this.exit.then(() => (exited = true));
    await waitFor(
      async () => {
        if (exited) throw new Error(`${this.role} exited during start-up (log: ${this.logFile})`);
        if (port === undefined) return false;
        return fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
      },
      { timeoutMs: 120_000, intervalMs: 200, what: `${this.role} ready (log: ${this.logFile})` },
    ).catch((err: unknown) => {
      if (exited) throw new Error(`${this.role} exited during start-up; its log ${this.logFile} ends:\n${tail(this.logFile)}`);
      throw err;
    });
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill9(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exit;
  }

  /** Resolves when the process ends on its own (or rejects after `timeoutMs`). */
  async exited(timeoutMs: number): Promise<void> {
    await Promise.race([this.exit, new Promise((_, reject) => setTimeout(() => reject(new Error(`${this.role} did not exit within ${timeoutMs} ms`)), timeoutMs))]);
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child?.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 30_000);
    await this.exit;
    clearTimeout(timer);
  }
}

export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
