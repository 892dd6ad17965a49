/**
 * The fault harness at CI size: one run of six lanes side by side (each store in the default mode,
 * on the fast path, and on the fast path with three partitioned relays, issue 17), a few minutes of
 * steady load with every kind of fault injected once: relay and worker SIGKILL, the sender (worker,
 * or relay on the fast path) killed right after Kafka's acknowledgement, Kafka restarted, frozen,
 * down for two minutes (with a hot ordered key whose backlog outgrows its sequencer's buffer) and
 * slow past a publish attempt's timeout for a minute, each lane's topic deleted and created again,
 * Temporal and the stores' servers restarted; plus aborted transactions. Each lane's independent
 * checker must show nothing lost, nothing invented, order kept and the inbox applying each event
 * once. The seed is printed; TXOUTBOX_FAULT_SEED repeats a run. The long soak is `npm run faults`.
 */
import { STORE_KINDS } from '../support/pipeline-store';
import { FAULT_KINDS, type LaneSpec } from './harness';
import { expectLaneHeld, faultSeed, laneTitle, useHarnessRun } from './suite';

const lanes: LaneSpec[] = STORE_KINDS.flatMap((store) => [
  { store, fastPath: false, relays: 1 },
  { store, fastPath: true, relays: 1 },
  { store, fastPath: true, relays: 3 },
]);

describe(`fault harness (CI size), six lanes under every kind of fault (seed ${faultSeed})`, () => {
  const result = useHarnessRun(
    {
      lanes,
      durationMs: 300_000,
      faults: FAULT_KINDS.length,
      ratePerSecond: 1,
      hotKeyShare: 0.5,
      sequencerBuffer: 30,
      outageMs: [120_000, 120_000],
      drainTimeoutMs: 360_000,
    },
    1_500_000,
  );

  it('injected every kind of fault once', () => {
    expect(result().faults.map((f) => f.kind).sort()).toEqual([...FAULT_KINDS].sort());
  });

  it.each(lanes.map((lane) => [laneTitle(lane), lane] as const))('%s: loses nothing, invents nothing, keeps per-key order, applies each event once', (_name, spec) => {
    expectLaneHeld(result(), spec, true);
  });
});
