import { OutboxError, OutboxErrorCode } from './errors';

/** Options of the write path (`createOutbox`). */
export interface OutboxOptions {
  /** CloudEvents `source` of every event: the producing service. @default "txoutbox" */
  source?: string;
  /** Largest canonical payload accepted by `add()`, in bytes (Kafka's default message limit is ~1 MiB). @default 1000000 */
  maxPayloadBytes?: number;
  /** Largest message key, in bytes. @default 1024 */
  maxKeyBytes?: number;
  /** Most extra headers one event may carry. @default 32 */
  maxHeaders?: number;
  /** Largest header value, in bytes. @default 4096 */
  maxHeaderValueBytes?: number;
  /** Clock for `occurredAt` when the caller gives none. @default () => new Date() */
  clock?: () => Date;
}

export function applyOutboxDefaults(options: OutboxOptions = {}): Required<OutboxOptions> {
  const resolved: Required<OutboxOptions> = {
    source: options.source ?? 'txoutbox',
    maxPayloadBytes: options.maxPayloadBytes ?? 1_000_000,
    maxKeyBytes: options.maxKeyBytes ?? 1024,
    maxHeaders: options.maxHeaders ?? 32,
    maxHeaderValueBytes: options.maxHeaderValueBytes ?? 4096,
    clock: options.clock ?? (() => new Date()),
  };
  if (typeof resolved.source !== 'string' || resolved.source.length === 0) {
    throw new OutboxError(OutboxErrorCode.invalidConfig, 'outbox option "source" must be a non-empty string');
  }
  for (const name of ['maxPayloadBytes', 'maxKeyBytes', 'maxHeaders', 'maxHeaderValueBytes'] as const) {
    const value = resolved[name];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new OutboxError(OutboxErrorCode.invalidConfig, `outbox option "${name}" must be a positive integer, got ${String(value)}`);
    }
  }
  return resolved;
}
