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
 * Fields never written to logs, at any depth: payloads and connection secrets. txoutbox itself logs
 * neither; this guards what a caller puts in `fields` (a whole configuration object included).
 * Passwords inside URLs (`scheme://user:password@host`) in any string are masked too.
 */
export const REDACTED_FIELDS: readonly string[] = ['payload', 'password', 'pgUrl', 'mongodbUri', 'connectionString', 'apiKey', 'sasl', 'key', 'authorization'];
const REDACTED_KEYS = new Set(REDACTED_FIELDS.map((k) => k.toLowerCase()));
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^:/@\s]+:)[^@\s]*@/gi;

/** A copy of `value` with secrets replaced; `key` only inside a `tls`/`ssl` object (elsewhere it is a message key). */
export function redactSecrets(value: unknown, depth = 0, parent = ''): unknown {
  if (typeof value === 'string') return value.replace(URL_PASSWORD, '$1[redacted]@');
  if (depth > 8 || value === null || typeof value !== 'object' || value instanceof Error || Buffer.isBuffer(value)) return value;
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, depth + 1, parent));
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const lower = k.toLowerCase();
    const secret = REDACTED_KEYS.has(lower) && (lower !== 'key' || parent === 'tls' || parent === 'ssl');
    out[k] = secret ? '[redacted]' : redactSecrets(v, depth + 1, lower.endsWith('tls') || lower === 'ssl' ? (lower === 'ssl' ? 'ssl' : 'tls') : lower);
  }
  return out;
}

/**
 * Structured JSON lines (pino) on stderr, at `level` and above; `level` is written as its name.
 * `destination` receives each line instead (tests).
 */
export function createJsonLogger(level: LogLevel = 'info', destination?: (line: string) => void): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { pid: process.pid },
    formatters: { level: (label) => ({ level: label }), log: (fields) => redactSecrets(fields) as Record<string, unknown> },
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
