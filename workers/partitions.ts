import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { assignedPartitions, silentLogger, type Logger, type PartitionLeases } from '../domain/outbox';

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
  /** @default Date.now */
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
 * its share (partition p to the (p mod M)-th live member by id), gives up what is no longer its share
 * (after `onChange` stopped reading it, so its last position is saved), and renews or takes the
 * leases of its share. `valid()` says whether the leases it holds are still its own by its clock:
 * the relay publishes and saves positions only while it is true.
 */
export class PartitionOwnership extends EventEmitter<OwnershipEvents> {
  readonly member: string;
  readonly leaseMs: number;
  private owned: readonly number[] = [];
  private validUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly options: PartitionOwnershipOptions & { logger: Logger; now: () => number };

  constructor(options: PartitionOwnershipOptions) {
    super();
    this.member = options.member ?? defaultMemberId();
    this.leaseMs = options.leaseMs ?? 15_000;
    this.options = { ...options, logger: options.logger ?? silentLogger, now: options.now ?? Date.now };
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

  /** The first round (the relay reads nothing before it), then one every `leaseMs / 3`. */
  async start(): Promise<void> {
    await this.round();
    this.schedule();
  }

  /** Stops renewing, and gives up every lease and the membership (after `onChange([])`), so the others take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    const held = this.owned;
    this.owned = [];
    await this.options.onChange([]);
    await this.options.store.releaseLeases(this.options.group, this.member, held, true).catch((err: unknown) =>
      this.options.logger.warn('could not give up partition leases at shutdown; they lapse', { error: err, partitions: held.join(',') }),
    );
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.round()
        .catch((err: unknown) => this.options.logger.error('partition lease renewal failed; retrying', { error: err, member: this.member }))
        .finally(() => {
          this.running = undefined;
          this.schedule();
        });
    }, Math.max(50, Math.floor(this.leaseMs / 3)));
  }

  private async round(): Promise<void> {
    const { store, group, logger } = this.options;
    const sent = this.options.now();
    const members = await store.heartbeat(group, this.member, this.leaseMs);
    const share = assignedPartitions(members, this.member, await store.partitionCount());
    const keep = this.owned.filter((p) => share.includes(p));
    if (keep.length < this.owned.length) {
      const giveUp = this.owned.filter((p) => !share.includes(p));
      await this.change(keep);
      await store.releaseLeases(group, this.member, giveUp);
      logger.info('gave up partitions to another relay', { member: this.member, partitions: giveUp.join(','), members: members.length });
    }
    if (this.stopped) return;
    const held = await store.acquire(group, this.member, share, this.leaseMs);
    this.validUntil = sent + this.leaseMs - Math.floor(this.leaseMs / 10);
    if (held.join(',') !== this.owned.join(',')) {
      const taken = held.filter((p) => !this.owned.includes(p));
      const lost = this.owned.filter((p) => !held.includes(p));
      await this.change(held);
      if (taken.length > 0) logger.info('took partition leases', { member: this.member, partitions: taken.join(','), members: members.length });
      if (lost.length > 0) logger.warn('lost partition leases to another relay', { member: this.member, partitions: lost.join(',') });
    }
    this.emit('renewed', { owned: this.owned, members: members.length });
  }

  private async change(owned: readonly number[]): Promise<void> {
    this.owned = owned;
    await this.options.onChange(owned);
  }
}
