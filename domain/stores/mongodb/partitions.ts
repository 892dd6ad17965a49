/**
 * Partitions of the outbox (issue 17): the count fixed at set-up, the relays' membership heartbeats,
 * their partition leases (on the server's clock), and each partition's lease and backlog for the CLI.
 */
import { OutboxError, OutboxErrorCode, partitionCheckpointName, type PartitionStatus } from '../../outbox';
import { serverNow, type LeaseDocument, type MongoStoreContext } from './context';

/** The partition count, read once; null while the outbox was not set up since partitions came (its events then count as partition 0). */
export async function partitionCountIfSetUp(t: MongoStoreContext): Promise<number | null> {
  if (t.partitionCountRead !== undefined) return t.partitionCountRead;
  const count = (await t.meta.findOne({ _id: 'partitions' }))?.count ?? null;
  if (count !== null) t.partitionCountRead = count;
  return count;
}

export async function partitionCount(t: MongoStoreContext): Promise<number> {
  const count = await partitionCountIfSetUp(t);
  if (count === null) {
    throw new OutboxError(OutboxErrorCode.storeNotSetUp, 'mongodb store: no partition count: run `txoutbox migrate` once (or call store.setup() from your migrations)', {
      context: { collection: 'outbox_meta' },
    });
  }
  return count;
}

export async function heartbeat(t: MongoStoreContext, group: string, member: string, ttlMs: number): Promise<string[]> {
  const now = await serverNow(t);
  await t.relays.updateOne({ _id: `${group}\u0000${member}` }, { $set: { group, member, expiresAt: new Date(now.getTime() + ttlMs) } }, { upsert: true });
  // Members gone for an hour are forgotten (a crashed relay never leaves).
  await t.relays.deleteMany({ group, expiresAt: { $lt: new Date(now.getTime() - 3_600_000) } });
  const live = await t.relays.find({ group, expiresAt: { $gt: now } }, { sort: { member: 1 }, limit: 10_000 }).toArray();
  return [...new Set([...live.map((r) => r.member), member])].sort();
}

export async function acquire(t: MongoStoreContext, group: string, member: string, partitions: readonly number[], ttlMs: number): Promise<number[]> {
  if (partitions.length === 0) return [];
  const now = await serverNow(t);
  const expiresAt = new Date(now.getTime() + ttlMs);
  const ids = partitions.map((p) => partitionCheckpointName(group, p));
  // One update renews or takes every lease this member holds, nobody holds, or that ran out: all of
  // them get the same end, so a relay that stops between two rounds never holds leases of different
  // ends (one update a partition left a window where some were renewed and some not).
  await t.leases.updateMany({ _id: { $in: ids }, $or: [{ owner: member }, { owner: null }, { expiresAt: { $lte: now } }] }, { $set: { owner: member, expiresAt } });
  const readLeases = (): Promise<LeaseDocument[]> => t.leases.find({ _id: { $in: ids } }, { sort: { partition: 1 }, limit: ids.length }).toArray();
  let leases = await readLeases();
  const never = partitions.filter((p) => !leases.some((l) => l.partition === p));
  if (never.length > 0) {
    // A lease never written: inserted; when another member's insert came first, the insert fails on
    // the _id and the lease is not taken.
    for (const partition of never) {
      await t.leases
        .updateOne({ _id: partitionCheckpointName(group, partition), owner: null }, { $set: { group, partition, owner: member, expiresAt } }, { upsert: true })
        .catch((err: unknown) => {
          if ((err as { code?: unknown }).code !== 11000) throw err;
        });
    }
    leases = await readLeases();
  }
  return leases.filter((l) => l.owner === member && l.expiresAt?.getTime() === expiresAt.getTime()).map((l) => l.partition);
}

export async function releaseLeases(t: MongoStoreContext, group: string, member: string, partitions: readonly number[], leave = false): Promise<void> {
  await t.leases.updateMany({ group, owner: member, partition: { $in: [...partitions] } }, { $set: { owner: null, expiresAt: null } });
  if (leave) await t.relays.deleteOne({ _id: `${group}\u0000${member}` });
}

export async function partitionStatus(t: MongoStoreContext, group: string): Promise<PartitionStatus[]> {
  const count = await partitionCount(t);
  const [leases, pending] = await Promise.all([
    t.leases.find({ group }, { sort: { partition: 1 }, limit: count }).toArray(),
    // One pass over the pending events: each partition's count and oldest (events written before
    // partitions came have none and count as partition 0).
    t.events
      .aggregate<{ _id: number; pending: number; oldest: { id: string; occurredAt: Date } }>([
        { $match: { status: 'pending' } },
        { $sort: { _id: 1 } },
        { $group: { _id: { $ifNull: ['$partition', 0] }, pending: { $sum: 1 }, oldest: { $first: { id: '$_id', occurredAt: '$occurredAt' } } } },
      ])
      .toArray(),
  ]);
  return Array.from({ length: count }, (_, p): PartitionStatus => {
    const lease = leases.find((l) => l.partition === p);
    const counted = pending.find((c) => c._id === p);
    return { partition: p, owner: lease?.owner ?? null, expiresAt: lease?.expiresAt ?? null, pending: counted?.pending ?? 0, oldestPending: counted?.oldest ?? null };
  });
}
