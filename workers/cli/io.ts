/** The CLI's exit codes, its typed failure, and where it writes and asks (a terminal, or a test's buffers). */
import { createInterface } from 'node:readline/promises';

export const ExitCode = { ok: 0, failure: 1, usage: 2, notFound: 3, refused: 4 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure with the exit code it ends the CLI with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
}

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Asks a yes/no question; null when there is no terminal to ask on. */
  confirm: (question: string) => Promise<boolean | null>;
}

export type Print = (human: string, json: unknown) => void;
export type Values = { partitions?: string; 'replication-factor'?: string; timeout?: string; interval?: string; iterations?: string; json?: boolean; yes?: boolean; status?: string; type?: string; limit?: string; from?: string; to?: string; 'published-older-than'?: string };

export function processIo(): Io {
  return {
    out: (line) => process.stdout.write(line + '\n'),
    err: (line) => process.stderr.write(line + '\n'),
    confirm: async (question) => {
      if (!process.stdin.isTTY) return null;
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return /^y(es)?$/i.test((await rl.question(question)).trim());
      } finally {
        rl.close();
      }
    },
  };
}

/** Goes on when --yes was given or the operator answers yes; otherwise a usage failure. */
export async function confirmOrRefuse(io: Io, values: Values, question: string): Promise<void> {
  if (values.yes) return;
  const answer = await io.confirm(`${question} [y/N] `);
  if (answer === null) throw new CliError(`${question}: refused without --yes (no terminal to confirm on)`, ExitCode.usage);
  if (!answer) throw new CliError('cancelled', ExitCode.usage);
}
