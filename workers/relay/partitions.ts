import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { assignedPartitions, silentLogger, type Logger, type PartitionLeases } from '../../domain/outbox';

export interface PartitionOwnershipOptions {
  store: PartitionLeases;
  /** The relay group: relays sharing a name (the checkpoint name) share its partitions. */
  group: string;
  /** This relay's id in the group, unique among its live members. @default defaultMemberId() */
  member?: string;
  /** How long a lease (and a membership) lasts without renewal, in ms. @default 15000 */
  leaseMs?: number;
  /**
   * Called with the partitions this relay is to read from now on, before any lease it gives up is
   * released: resolves once nothing reads a partition outside them.
   */
  onChange: (owned: readonly number[]) => Promise<void>;
  logger?: Logger;
  /** A monotonic clock, in ms: only the time elapsed since a renewal was sent counts. @default performance.now */
  now?: () => number;
}

export interface OwnershipEvents {
  /** A renewal round finished: the partitions held, and the live members seen. */
  renewed: [{ owned: readonly number[]; members: number }];
}

/** A relay's id in its group: host, process id and random bytes (a restarted relay is a new member). */
export function defaultMemberId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/**
 * The partitions one relay owns (issue 17). Every `leaseMs / 3` it renews its membership, works out
 * its share (partition p to the (p mod M)-th live member by id), and renews or takes the leases of its
 * share, whatever its feed is doing: a rebalance never waits for the batch in flight. What is no longer
 * its share is handed over: `onChange` stops the feed reading it (after its batch in flight, its last
 * position saved), its leases are renewed meanwhile, and the next round releases them. `valid()` says
 * whether the leases it holds are still its own by its clock: the relay publishes and saves positions
 * only while it is true.
 */
export class PartitionOwnership extends EventEmitter<OwnershipEvents> {
  readonly member: string;
  readonly leaseMs: number;
  /** The partitions the relay is to read. */
  private owned: readonly number[] = [];
  /** Partitions no longer its share that its feed may still be reading: renewed until it stopped. */
  private readonly handingOver = new Set<number>();
  /** Of those, the ones the feed no longer reads: released by the next round. */
  private readonly handedOver = new Set<number>();
  /** The `onChange` calls, one after another, never awaited by a renewal round. */
  private changing: Promise<void> = Promise.resolve();
  private validUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly options: PartitionOwnershipOptions & { logger: Logger; now: () => number };

  constructor(options: PartitionOwnershipOptions) {
    super();
    this.member = options.member ?? defaultMemberId();
    this.leaseMs = options.leaseMs ?? 15_000;
    this.options = { ...options, logger: options.logger ?? silentLogger, now: options.now ?? (() => performance.now()) };
  }

  /** The partitions held now. */
  partitions(): readonly number[] {
    return this.owned;
  }

  /**
   * True while the leases held were renewed less than a lease ago, less a tenth for clock drift: the
   * store's expiry ran from a moment after the renewal was sent, so this ends first.
   */
  valid(): boolean {
    return this.owned.length > 0 && this.options.now() < this.validUntil;
  }

  /** The first round (the relay reads nothing before its first feed is chosen), then one every `leaseMs / 3`. */
  async start(): Promise<void> {
    await this.round();
    await this.changing;
    this.schedule();
  }

  /** Stops renewing, and gives up every lease and the membership (after `onChange([])`), so the others take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    const held = [...new Set([...this.owned, ...this.handingOver])];
    this.owned = [];
    this.changing = this.changing.then(() => this.options.onChange([]));
    await this.changing;
    await this.options.store.releaseLeases(this.options.group, this.member, held, true).catch((err: unknown) =>
      this.options.logger.warn('could not give up partition leases at shutdown; they lapse', { error: err, partitions: held.join(',') }),
    );
  }

  private schedule(delayMs = Math.max(50, Math.floor(this.leaseMs / 3))): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.running !== undefined) return this.schedule(50);
      this.running = this.round()
        .catch((err: unknown) => this.options.logger.error('partition lease renewal failed; retrying', { error: err, member: this.member }))
        .finally(() => {
          this.running = undefined;
          this.schedule();
        });
    }, delayMs);
  }

  private async round(): Promise<void> {
    const { store, group, logger } = this.options;
    const members = await store.heartbeat(group, this.member, this.leaseMs);
    const share = assignedPartitions(members, this.member, await store.partitionCount());
    // Hand-overs whose feed has stopped: released before anything is renewed.
    const release = [...this.handedOver].filter((p) => !share.includes(p));
    if (release.length > 0) {
      await store.releaseLeases(group, this.member, release);
      logger.info('gave up partitions to another relay', { member: this.member, partitions: release.join(','), members: members.length });
    }
    for (const p of this.handedOver) this.handingOver.delete(p);
    this.handedOver.clear();
    if (this.stopped) return;
    const sent = this.options.now();
    // Its share, and what it reads or may still be reading: what it gives up stays its own until its feed stopped.
    const renew = [...new Set([...share, ...this.owned, ...this.handingOver])].sort((a, b) => a - b);
    const held = await store.acquire(group, this.member, renew, this.leaseMs);
    this.validUntil = sent + this.leaseMs - Math.floor(this.leaseMs / 10);
    for (const p of this.handingOver) if (!held.includes(p)) this.handingOver.delete(p);
    const target = held.filter((p) => share.includes(p));
    if (target.join(',') !== this.owned.join(',')) {
      const taken = target.filter((p) => !this.owned.includes(p));
      const lost = this.owned.filter((p) => !held.includes(p));
      const giveUp = this.owned.filter((p) => held.includes(p) && !share.includes(p));
      for (const p of giveUp) this.handingOver.add(p);
      this.owned = target;
      this.changing = this.changing
        .then(() => this.options.onChange(target))
        .then(() => {
          // The feed no longer reads them: the next round, brought forward, releases them.
          for (const p of giveUp) this.handedOver.add(p);
          if (giveUp.length > 0) this.schedule(0);
        })
        .catch((err: unknown) => logger.error('the relay could not switch partitions', { error: err, member: this.member }));
      if (taken.length > 0) logger.info('took partition leases', { member: this.member, partitions: taken.join(','), members: members.length });
      if (lost.length > 0) logger.warn('lost partition leases to another relay', { member: this.member, partitions: lost.join(',') });
    }
    this.emit('renewed', { owned: this.owned, members: members.length });
  }
}
