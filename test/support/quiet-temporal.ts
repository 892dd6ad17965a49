// Jest setup for server-backed projects: the Temporal SDK's records (warnings and errors, its Rust
// core's included) of the workers a test runs go to a file, one line each, errors as their message without a stack (an
// activity failing on purpose is most of them); test-environment.js prints a failing test's lines.
import { DefaultLogger, makeTelemetryFilterString, Runtime, type LogEntry } from '@temporalio/worker';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const sdkTestLog = require('./sdk-test-log') as { append: (line: string) => void };

function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (cause: ${error.cause.name}: ${error.cause.message})` : '';
  return `${error.name}: ${error.message}${cause}`;
}

function line(entry: LogEntry): string {
  const { error, ...meta } = entry.meta ?? {};
  let fields: string;
  try {
    fields = JSON.stringify(meta, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
  } catch {
    fields = '{…}';
  }
  const at = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  return `${at} [${entry.level}] ${entry.message} ${fields}${error === undefined ? '' : ` error: ${errorText(error)}`}`;
}

try {
  Runtime.install({
    logger: new DefaultLogger('WARN', (entry) => sdkTestLog.append(line(entry))),
    // The Rust core's records too, forwarded to the same logger instead of written to stderr.
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN', other: 'ERROR' }), forward: {} } },
  });
} catch {
  // Already installed in this process by an earlier test file: its logger stays.
}
