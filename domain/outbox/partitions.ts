import { OutboxError, OutboxErrorCode } from './errors';

/**
 * Partitions of the outbox (issue 17). Every event carries one: a hash of its key into N partitions,
 * N fixed when the store is set up. Relays that share a name own partitions through leases in the
 * store, so each event is read by one relay, and a key, which lives in one partition, is read by one
 * relay at a time.
 */

/** Partitions of an outbox set up without saying how many. */
export const DEFAULT_PARTITION_COUNT = 16;
/** The most partitions an outbox may have. */
export const MAX_PARTITION_COUNT = 1024;

/**
 * The partition of a key: FNV-1a (32 bits) over its UTF-8 bytes, modulo `count`. Both stores compute
 * it here, at write time, so an event's partition never depends on the adapter.
 */
export function partitionOf(key: string, count: number): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(key, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}

/** Checks a partition count given to set-up: a positive integer up to MAX_PARTITION_COUNT. */
export function checkPartitionCount(count: unknown): number {
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1 || count > MAX_PARTITION_COUNT) {
    throw new OutboxError(OutboxErrorCode.invalidConfig, `partitions must be an integer from 1 to ${MAX_PARTITION_COUNT}, got ${String(count)}`);
  }
  return count;
}

/**
 * The error of a relay saving the positions of partitions whose leases it no longer holds (`lost`):
 * nothing is saved, and the new owner's position is the one that counts.
 */
export function leaseLostError(group: string, member: string, lost: readonly number[]): OutboxError {
  return new OutboxError(OutboxErrorCode.leaseLost, `relay ${member} no longer holds the lease of partitions ${lost.join(', ')} of ${JSON.stringify(group)}: their position is not saved`, {
    context: { feed: group, member, partitions: lost.join(',') },
  });
}

/** The checkpoint name of one partition of a relay group's feed. */
export function partitionCheckpointName(group: string, partition: number): string {
  return `${group}#p${partition}`;
}

/** One partition's lease: who holds it and until when (the store's clock); null owner: nobody. */
export interface PartitionLease {
  partition: number;
  owner: string | null;
  expiresAt: Date | null;
}

/** A partition's lease with its backlog, for `txoutbox status`. */
export interface PartitionStatus extends PartitionLease {
  pending: number;
  /** The oldest pending event of the partition, if any. */
  oldestPending: { id: string; occurredAt: Date } | null;
}

/**
 * What a relay group (relays sharing a name) keeps in the store to share the partitions: members that
 * renew themselves, and one lease per partition. Leases are compared on the store's clock.
 */
export interface PartitionLeases {
  /** N, fixed at set-up. */
  partitionCount(): Promise<number>;
  /** Registers or renews `member` in `group` until `ttlMs` from now; returns the live members' ids, sorted. */
  heartbeat(group: string, member: string, ttlMs: number): Promise<string[]>;
  /**
   * Renews `member`'s leases on `partitions` and takes those nobody holds or whose lease ran out, each
   * until `ttlMs` from now; returns the partitions of `partitions` the member holds afterwards, sorted.
   */
  acquire(group: string, member: string, partitions: readonly number[], ttlMs: number): Promise<number[]>;
  /** Gives up `member`'s leases on `partitions`; with `leave`, also its membership. */
  releaseLeases(group: string, member: string, partitions: readonly number[], leave?: boolean): Promise<void>;
  /** Every partition of the group, with its lease and backlog. */
  partitionStatus(group: string): Promise<PartitionStatus[]>;
}

/**
 * The partitions `member` should own: partition p goes to the (p mod M)-th live member, sorted by id.
 * Every relay computes the same assignment from the same member list.
 */
export function assignedPartitions(members: readonly string[], member: string, count: number): number[] {
  const index = members.indexOf(member);
  if (index < 0) return [];
  const mine: number[] = [];
  for (let p = index; p < count; p += members.length) mine.push(p);
  return mine;
}
