import { randomBytes } from 'node:crypto';

/**
 * UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Ids made by one process are
 * strictly increasing, also within one millisecond (the 12-bit `rand_a` field is used as a counter,
 * RFC 9562 section 6.2, method 1), so they sort in creation order as strings too.
 */
export function createEventIdGenerator(now: () => number = Date.now): () => string {
  let lastMs = -1;
  let counter = 0;
  return () => {
    let ms = now();
    if (ms <= lastMs) {
      counter += 1;
      if (counter > 0xfff) {
        // Counter exhausted within one millisecond: borrow the next millisecond.
        lastMs += 1;
        counter = 0;
      }
      ms = lastMs;
    } else {
      lastMs = ms;
      counter = 0;
    }
    const bytes = randomBytes(16);
    bytes.writeUIntBE(ms, 0, 6);
    bytes[6] = 0x70 | (counter >> 8);
    bytes[7] = counter & 0xff;
    bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f);
    return formatUuid(bytes);
  };
}

/** The smallest UUIDv7 of a millisecond: every id made at or after `ms` sorts at or after it. */
export function minEventIdAt(ms: number): string {
  const bytes = Buffer.alloc(16);
  bytes.writeUIntBE(Math.max(0, Math.floor(ms)), 0, 6);
  bytes[6] = 0x70;
  bytes[8] = 0x80;
  return formatUuid(bytes);
}

/** The creation time encoded in a UUIDv7, in Unix milliseconds. */
export function eventIdTime(id: string): number {
  return parseInt(id.replace(/-/g, '').slice(0, 12), 16);
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export function isEventId(value: unknown): value is string {
  return typeof value === 'string' && UUID_V7.test(value);
}

function formatUuid(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
