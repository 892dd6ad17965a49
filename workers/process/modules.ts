// workers/process/modules.ts: the service's own code that the processes and the CLI load by path:
// its compensations (TXOUTBOX_COMPENSATIONS_MODULE) and its event contracts (TXOUTBOX_CONTRACTS_MODULE).
import { resolve as resolvePath } from 'node:path';
import type { Compensation } from '../../activities';
import { OutboxError, OutboxErrorCode, TYPE_NAME, type EventRegistry } from '../../domain/outbox';

/** A JavaScript module by path (relative to the working directory); INVALID_CONFIG naming `variable` when it cannot be loaded. */
function loadModule(variable: string, path: string): { exports: Record<string, unknown>; bad: (message: string) => OutboxError } {
  const bad = (message: string): OutboxError => new OutboxError(OutboxErrorCode.invalidConfig, `${variable} (${path}) ${message}`);
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const loaded: unknown = require(resolvePath(path));
    return { exports: typeof loaded === 'object' && loaded !== null ? (loaded as Record<string, unknown>) : {}, bad };
  } catch (err) {
    // A registry that breaks its own promises throws when the module is loaded: said as it is.
    if (err instanceof OutboxError) throw err;
    throw bad(`cannot be loaded: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * The compensations of TXOUTBOX_COMPENSATIONS_MODULE (a JavaScript module): its `compensations`
 * export, or its default export, an object of event type -> `async (event) => void`.
 */
export function loadCompensations(path: string): Record<string, Compensation> {
  const { exports, bad } = loadModule('TXOUTBOX_COMPENSATIONS_MODULE', path);
  const table = exports.compensations ?? exports.default;
  if (typeof table !== 'object' || table === null) throw bad('must export `compensations`, an object of event type -> async (event) => void');
  for (const [type, fn] of Object.entries(table)) {
    if (!TYPE_NAME.test(type)) throw bad(`has ${JSON.stringify(type)}, which is not an event type name`);
    if (typeof fn !== 'function') throw bad(`has a compensation for ${type} that is not a function`);
  }
  return table as Record<string, Compensation>;
}

/**
 * The event contracts of TXOUTBOX_CONTRACTS_MODULE (a JavaScript module): its `registry` export, or
 * its default export, the EventRegistry its service writes with (`createEventRegistry`). Loading it
 * checks its versions' compatibility: a breach throws INCOMPATIBLE_SCHEMA.
 */
export function loadContracts(path: string): EventRegistry {
  const { exports, bad } = loadModule('TXOUTBOX_CONTRACTS_MODULE', path);
  const registry = exports.registry ?? exports.default;
  const r = registry as Partial<EventRegistry> | null | undefined;
  if (typeof r?.all !== 'function' || typeof r.asPublished !== 'function' || typeof r.publishVersion !== 'function') {
    throw bad('must export `registry`, the EventRegistry of createEventRegistry()');
  }
  return registry as EventRegistry;
}
