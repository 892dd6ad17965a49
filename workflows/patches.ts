/**
 * The `patched()` ids of workflow behaviour changes. Running workflows replay on new code: each
 * change that alters the commands a workflow issues is taken only where `patched(id)` says so, and an
 * id stays here (and in the code) until no workflow that started before it can still be running.
 */
export const Patches = {
  /**
   * A key sequencer missing its next sequence while later events of its key arrive asks the store at
   * once whether the missing ones were settled another way (the fast path), instead of sleeping out
   * the 30-second recheck or the ten-minute idle timeout first.
   */
  sequencerWakesOnLaterEvents: 'sequencer-wakes-on-later-events',
  /**
   * A key sequencer whose event's publish workflow closed without settling it (terminated, cancelled,
   * failed) starts that workflow again (ALLOW_DUPLICATE_FAILED_ONLY), unless the store says the event
   * was settled meanwhile, instead of waiting forever for a settlement nobody will make.
   */
  sequencerRestartsClosedChild: 'sequencer-restarts-closed-child',
  /**
   * The publish workflow asks the store before it escalates and before an operator's compensate or
   * discard, and records a publication the activity could not (PUBLISHED_NOT_RECORDED): an event the
   * store says is published completes as published.
   */
  escalationChecksStore: 'escalation-checks-store',
  /**
   * The operator loop never blocks on a failing side step: the dead-letter copy and the compensation
   * are tried a bounded number of times (OPERATOR_STEP); when they still fail the event stays stuck,
   * waiting for the next action, with the failure in `lastError`.
   */
  operatorStepsBounded: 'operator-steps-bounded',
  /**
   * A key sequencer holding an event continues as new when the signals that arrive meanwhile have
   * grown its history (the held publish workflow runs on, abandoned to the new run), and a held event
   * whose workflow runs elsewhere is watched in the store and started again if that run closes
   * without settling it, instead of one activity waiting for the store forever. Its buffer keeps at
   * most `bufferLimit` events (the lowest sequences); the rest wait in the store for a sweep.
   */
  sequencerHoldsAcrossContinueAsNew: 'sequencer-holds-across-continue-as-new',
  /**
   * A key sequencer drops buffered events below the store's lowest open sequence (settled another
   * way, they counted towards a full buffer for ever), and asks the store about the event it holds
   * while that event's publish workflow runs (every 30 s, doubling to 10 minutes) and at once when the
   * workflow already ran, instead of only when its history grew or 30 s later.
   */
  sequencerRechecksStore: 'sequencer-rechecks-store',
  /**
   * The publish workflow waits out a timed-out attempt's send (until the time its heartbeat named)
   * before it asks the store and escalates, and acts on what each status change answered: an event
   * the store says is published (a late acknowledgement) completes as published, never stuck, and an
   * operator's retry, compensate or discard of it is not carried out.
   */
  publishWaitsOutLateAcknowledgements: 'publish-waits-out-late-acknowledgements',
  /**
   * The first publish attempt runs as a local activity (no activity task round trip, no activity
   * events in the history); when it fails in a way a later attempt may pass, the others run as the
   * activity under the same policy, after its first wait, so a failing event shows its attempts, last
   * failure and pending activity in the Web UI as before (PublishPolicy.firstAttemptLocal).
   */
  publishFirstAttemptLocal: 'publish-first-attempt-local',
  /**
   * A key sequencer with later events of its key buffered behind the one it expects publishes them as
   * one run (a local activity: one claim, one Kafka request, one store statement), then starts each
   * published event's own workflow, which records it; what the run does not publish goes through its
   * own workflow as before. A hot key drains at many events per workflow task instead of one.
   */
  sequencerPublishesRuns: 'sequencer-publishes-runs',
  /**
   * The publish workflow asks one patch, this one, where it asked one per change: each patch a new
   * workflow asks adds a marker and an upsert of `TemporalChangeVersion` to its history, and the
   * server writes its visibility record once more for each upsert. Under it, every earlier patch of
   * the publish workflow holds (publishWaitsOutLateAcknowledgements, publishFirstAttemptLocal,
   * escalationChecksStore, operatorStepsBounded), and a workflow started with the receipt its key's
   * run recorded (PublishEventInput.recorded) completes with it, with no activity.
   */
  publishPatchesFolded: 'publish-patches-folded',
  /**
   * The key sequencer asks one patch, this one, where each of its runs asked three at its start and
   * more later (a marker and a `TemporalChangeVersion` upsert each): under it, every earlier patch of
   * the sequencer holds (sequencerWakesOnLaterEvents, sequencerRestartsClosedChild,
   * sequencerHoldsAcrossContinueAsNew, sequencerRechecksStore, sequencerPublishesRuns).
   */
  sequencerPatchesFolded: 'sequencer-patches-folded',
} as const;
export type Patch = (typeof Patches)[keyof typeof Patches];
