import type { LogEntry } from '@temporalio/worker';
import type { Logger, LogLevel } from '../../domain/outbox';

const LEVELS: Record<LogEntry['level'], LogLevel> = { TRACE: 'debug', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/**
 * The Temporal SDK's log records (its TypeScript side and, forwarded, its Rust core) written by
 * txoutbox's own logger: one JSON line each on stderr, like every other line of the process, with
 * `source: "temporal-sdk"`, instead of the SDK's multi-line text with colours and stack traces.
 */
export function sdkLogFunction(logger: Logger): (entry: LogEntry) => void {
  return (entry) => {
    const { error, ...meta } = entry.meta ?? {};
    logger[LEVELS[entry.level]](entry.message, { source: 'temporal-sdk', ...meta, ...(error === undefined ? {} : { error }) });
  };
}
