/**
 * Ownership of events between the fast path and workflows: claims under a lease and a token, their
 * release, and the fast path's batch of marks under its token.
 */
import { randomUUID } from 'node:crypto';
import type { Filter } from 'mongodb';
import type { EventOwner, MarkManyResult, PublishResult, WorkflowClaim } from '../../outbox';
import { isKafkaPositionTaken, publishedUpdate, serverNow, toEvent, type MongoStoreContext, type OutboxDocument } from './context';

/**
 * A workflow's claim that needs no clock: events nobody owns or a workflow owns (the usual case: no
 * fast claim on them). One filter and one change for `claim` and `claimForWorkflow`.
 */
const workflowClaimWithoutClock = (ids: readonly string[]): Filter<OutboxDocument> => ({ _id: { $in: [...ids] }, status: { $in: ['pending', 'stuck'] }, owner: { $in: [null, 'workflow'] } });
const workflowClaimSet = () => ({ $set: { owner: 'workflow' as const, claimedUntil: null, claimToken: null, claimNonce: randomUUID() } });

export async function claim(t: MongoStoreContext, eventIds: readonly string[], owner: EventOwner, leaseMs = 60_000, token?: string): Promise<string[]> {
  if (eventIds.length === 0) return [];
  const ids = [...new Set(eventIds)].sort();
  if (owner === 'workflow') {
    // A workflow's claim first asks for what needs no clock. When it gets every one, that one
    // command is the whole claim; otherwise the claim on the clock takes over ended fast leases too.
    const { matchedCount } = await t.events.updateMany(workflowClaimWithoutClock(ids), workflowClaimSet());
    if (matchedCount === ids.length) return ids;
  }
  return claimOnServerClock(t, ids, owner, leaseMs, token);
}

/** The claim of `ids` (distinct, sorted) that compares leases: a fast claim's, or a workflow's taking over ended fast leases. */
async function claimOnServerClock(t: MongoStoreContext, ids: string[], owner: EventOwner, leaseMs = 60_000, token?: string): Promise<string[]> {
  // Leases are compared on the server's clock: every relay and worker then agrees on when one ends,
  // whatever their own clocks say (a process running fast would take over live leases).
  const now = await serverNow(t);
  const claimNonce = randomUUID();
  const filter: Filter<OutboxDocument> =
    owner === 'fast'
      ? { _id: { $in: ids }, status: 'pending', $or: [{ owner: null }, { owner: 'fast', claimedUntil: { $lt: now } }] }
      : { _id: { $in: ids }, status: { $in: ['pending', 'stuck'] }, $or: [{ owner: null }, { owner: 'workflow' }, { claimedUntil: { $lt: now } }] };
  const claimedUntil = owner === 'fast' ? new Date(now.getTime() + leaseMs) : null;
  const claimToken = owner === 'fast' ? (token ?? randomUUID()) : null;
  const { matchedCount } = await t.events.updateMany(filter, { $set: { owner, claimedUntil, claimToken, claimNonce } });
  // Every one matched: each now carries this claim's nonce, so the read-back would return them all.
  if (matchedCount === ids.length) return ids;
  const claimed = await t.events.find({ _id: { $in: ids }, claimNonce }, { sort: { _id: 1 }, limit: ids.length }).toArray();
  return claimed.map((d) => d._id);
}

export async function claimForWorkflow(t: MongoStoreContext, eventId: string): Promise<WorkflowClaim> {
  // The claim without a clock, in one command that answers with the event. Otherwise the event as
  // it is; one a fast claimant holds, whose lease may have ended, goes to the claim on the clock
  // and is read again.
  const doc = await t.events.findOneAndUpdate(workflowClaimWithoutClock([eventId]), workflowClaimSet(), { returnDocument: 'after' });
  if (doc !== null) return { claimed: true, event: toEvent(doc) };
  const current = await t.events.findOne({ _id: eventId });
  if (current === null) return { claimed: false, event: null };
  const fastOwned = current.owner === 'fast' && (current.status === 'pending' || current.status === 'stuck');
  if (!fastOwned || (await claimOnServerClock(t, [eventId], 'workflow')).length === 0) return { claimed: false, event: toEvent(current) };
  const claimed = await t.events.findOne({ _id: eventId });
  return { claimed: claimed !== null, event: claimed ? toEvent(claimed) : null };
}

export async function release(t: MongoStoreContext, eventIds: readonly string[], token: string): Promise<void> {
  if (eventIds.length === 0) return;
  await t.events.updateMany({ _id: { $in: [...eventIds] }, owner: 'fast', status: 'pending', claimToken: token }, { $set: { owner: null, claimedUntil: null, claimToken: null } });
}

export async function markPublishedMany(t: MongoStoreContext, results: readonly PublishResult[], token: string): Promise<MarkManyResult> {
  if (results.length === 0) return { marked: 0, positionTaken: [] };
  // One command for the batch: an update per event, sent together (as many single updates, they
  // queued behind each other in the server, and a batch of 250 took 7 s on SecantusDB, not 0.5 s).
  // Unordered: an event whose Kafka position is taken is not marked; the others are.
  const updates = results.map((r) => {
    const [filter, update] = publishedUpdate(r);
    return { updateOne: { filter: { ...filter, owner: 'fast' as const, claimToken: token }, update } };
  });
  try {
    return { marked: (await t.events.bulkWrite(updates, { ordered: false })).matchedCount, positionTaken: [] };
  } catch (err) {
    const failed = ([] as Array<{ index?: unknown }>).concat((err as { writeErrors?: Array<{ index?: unknown }> }).writeErrors ?? []);
    if (failed.length === 0 || !failed.every(isKafkaPositionTaken)) throw err;
    const positionTaken = failed.map((f) => results[Number(f.index)]).filter((r): r is PublishResult => r !== undefined);
    return { marked: (err as { result?: { matchedCount?: number } }).result?.matchedCount ?? results.length - positionTaken.length, positionTaken };
  }
}
