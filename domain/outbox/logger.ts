import pino from 'pino';

/** Structured fields of a log line; `eventId`, `type`, `workflowId`, `attempt` where they apply. */
export type LogFields = Record<string, unknown>;

/** The logger txoutbox's parts take: inject your own, or use one of the three below. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * Fields never written to logs: payloads and connection secrets. txoutbox itself logs neither; this
 * guards what a caller puts in `fields`.
 */
export const REDACTED_FIELDS = ['payload', '*.payload', 'password', '*.password', 'pgUrl', 'mongodbUri', 'connectionString', '*.connectionString'];

/**
 * Structured JSON lines (pino) on stderr, at `level` and above; `level` is written as its name.
 * `destination` receives each line instead (tests).
 */
export function createJsonLogger(level: LogLevel = 'info', destination?: (line: string) => void): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { pid: process.pid },
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACTED_FIELDS, censor: '[redacted]' },
    serializers: { error: pino.stdSerializers.err },
  };
  const log = destination
    ? pino(options, { write: (chunk: string) => destination(chunk.replace(/\n$/, '')) })
    : pino(options, pino.destination({ fd: 2, sync: true }));
  const at =
    (lvl: LogLevel) =>
    (message: string, fields: LogFields = {}): void => {
      log[lvl](fields, message);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Logs nothing: the default where no logger is given. */
export const silentLogger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

export interface LogRecord {
  level: LogLevel;
  message: string;
  fields: LogFields;
}

/** Keeps every line in memory, for tests that assert what was logged. */
export function createMemoryLogger(): Logger & { records: LogRecord[] } {
  const records: LogRecord[] = [];
  const at =
    (level: LogLevel) =>
    (message: string, fields: LogFields = {}): void => {
      records.push({ level, message, fields });
    };
  return { records, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
