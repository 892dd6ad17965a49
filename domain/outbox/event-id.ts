import { v7 } from 'uuid';

/**
 * UUIDv7 (RFC 9562) from the `uuid` package: 48 bits of Unix milliseconds, then a 32-bit counter
 * seeded at random each millisecond (RFC 9562 section 6.2, method 1), then random bits. The counter
 * is the package's, one per process, so ids made by one process are strictly increasing, also within
 * one millisecond and when the clock steps back, and sort in creation order as strings too.
 */
export function createEventIdGenerator(): () => string {
  return () => v7();
}

const NO_RANDOM = new Uint8Array(16);

/** The smallest UUIDv7 of a millisecond: every id made at or after `ms` sorts at or after it. */
export function minEventIdAt(ms: number): string {
  return v7({ msecs: Math.max(0, Math.floor(ms)), seq: 0, random: NO_RANDOM });
}

/** The creation time encoded in a UUIDv7, in Unix milliseconds. */
export function eventIdTime(id: string): number {
  return parseInt(id.replace(/-/g, '').slice(0, 12), 16);
}

// Lower case only (uuid's validate() also takes upper case): ids are compared and sorted as strings
// in the stores and are the suffix of workflow ids.
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export function isEventId(value: unknown): value is string {
  return typeof value === 'string' && UUID_V7.test(value);
}
