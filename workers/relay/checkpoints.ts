import type { FeedBatch } from '../../domain/outbox';

/**
 * When a relay saves its feed position. A batch's position is saved only after the batch was
 * dispatched, saves stay in order, and one runs while the next batch is dispatched. At most one save
 * of dispatched events per `everyMs`: one due sooner waits for a later batch's (whose save covers
 * the earlier ones), or for `flush`. An idle feed's batches (nothing dispatched since the last save)
 * are saved as they come and not counted, so the next batch with events is saved at once when the
 * last real save is old.
 */
export class FeedCheckpoints {
  private lastSaveAt = Number.NEGATIVE_INFINITY;
  private saving: Promise<void> = Promise.resolve();
  /** The last batch dispatched and not saved yet, and the events dispatched since the last save. */
  private unsaved: { batch: FeedBatch; events: number } | undefined;

  /** `saved` is told each save's count of events once the store has it. */
  constructor(
    private readonly everyMs: number,
    private readonly saved: (events: number) => void,
  ) {}

  /** A feed (re)opened: nothing of the one before is waiting to be saved. */
  open(): void {
    this.saving = Promise.resolve();
    this.unsaved = undefined;
  }

  /** `batch` was dispatched: its position is saved now, or by a later save. Throws a save that failed before. */
  async dispatched(batch: FeedBatch): Promise<void> {
    const unsaved = { batch, events: (this.unsaved?.events ?? 0) + batch.events.length };
    this.unsaved = unsaved;
    const idle = unsaved.events === 0;
    if (!idle && Date.now() - this.lastSaveAt < this.everyMs) return;
    await this.saving;
    if (!idle) this.lastSaveAt = Date.now();
    this.save(unsaved);
  }

  /** Saves what was dispatched since the last save (a stopping feed), and waits for every save. */
  async flush(): Promise<void> {
    const unsaved = this.unsaved;
    if (unsaved !== undefined) {
      await this.saving;
      this.save(unsaved);
    }
    await this.saving;
  }

  private save(unsaved: { batch: FeedBatch; events: number }): void {
    this.unsaved = undefined;
    this.saving = unsaved.batch.checkpoint().then(() => this.saved(unsaved.events));
    // Not left unhandled meanwhile: its failure is thrown when awaited.
    this.saving.catch(() => undefined);
  }
}
