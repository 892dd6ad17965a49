/**
 * kafkajs 2.2.4 spins a 1 ms timer for as long as each broker connection is open, idle or not.
 *
 * Its `RequestQueue.scheduleCheckPendingRequests` computes `throttledUntil - Date.now()`, negative
 * when the broker never throttled (`throttledUntil` is -1), and with nothing pending it arms a timer
 * with that negative delay, which Node runs after 1 ms. The timer's `checkPendingRequests` calls it
 * again, so from a connection's first response on, it wakes the process a thousand times a second
 * (tulios/kafkajs#1556, #1604, #1704; the fixes, #1667 and #1768, were never merged or released).
 * Measured here: an idle relay and an idle worker each spent about 5% of a core on it.
 *
 * With nothing pending and no throttle in effect there is nothing to check: this returns without a
 * timer, as kafkajs#1667 does. Nothing is lost: a request that cannot go out at once is added to
 * `pending` and schedules its own check; a response or a timeout checks the queue itself. Every
 * other case goes to kafkajs' own method unchanged.
 *
 * Patched once per loaded kafkajs, on the module every producer of the process shares (ours resolve
 * it from this package). A kafkajs whose queue has no such method (another release) is left alone.
 * Returns whether the queue is patched.
 */
export function stopIdleRequestQueueTimers(): boolean {
  let queue: { prototype: RequestQueueInternals } | undefined;
  try {
    // An internal module of kafkajs, without types; a plain require, so a test's module registry gets its own.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    queue = require('kafkajs/src/network/requestQueue') as { prototype: RequestQueueInternals };
  } catch {
    return false;
  }
  const prototype = queue.prototype;
  const original = prototype.scheduleCheckPendingRequests;
  if (typeof original !== 'function') return false;
  if (PATCHED in original) return true;
  const patched = function scheduleCheckPendingRequests(this: RequestQueueInternals): void {
    if (!this.throttleCheckTimeoutId && this.pending.length === 0 && !(this.throttledUntil > Date.now())) return;
    original.call(this);
  };
  Object.defineProperty(patched, PATCHED, { value: true });
  prototype.scheduleCheckPendingRequests = patched;
  return true;
}

/** Marks the patched method, so a second call (another of our modules) patches nothing again. */
const PATCHED = Symbol.for('txoutbox.requestQueueIdle');

/** The fields of kafkajs' RequestQueue the check reads (src/network/requestQueue/index.js). */
export interface RequestQueueInternals {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: unknown;
  scheduleCheckPendingRequests: (this: RequestQueueInternals) => void;
}
