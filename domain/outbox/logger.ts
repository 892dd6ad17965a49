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
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** One JSON object per line on stderr, at `level` and above. */
export function createJsonLogger(level: LogLevel = 'info', write: (line: string) => void = (l) => process.stderr.write(l + '\n')): Logger {
  const at =
    (lvl: LogLevel) =>
    (message: string, fields: LogFields = {}): void => {
      if (LEVELS[lvl] < LEVELS[level]) return;
      write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg: message, ...serialisable(fields) }));
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

function serialisable(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = v instanceof Error ? { name: v.name, message: v.message, code: (v as { code?: unknown }).code } : v;
  }
  return out;
}
