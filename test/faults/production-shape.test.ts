/**
 * The fault harness on the production shape, at CI size (issue 27): the three-broker Kafka cluster
 * (replication factor 3, min.insync.replicas=2) and the Temporal server on PostgreSQL, both from
 * scripts/infra.sh (started here when they do not run, and stopped after), with the PostgreSQL store
 * in the default mode and on the fast path. Over three minutes of load (until the last fault is over) under the cluster's faults (a
 * partition leader killed, its followers frozen until the in-sync set shrinks and writes cannot be
 * acknowledged, a rolling restart), a Temporal server restart, and a PostgreSQL restart under both
 * the store and the Temporal server. The checker as in faults.test.ts. The soak is
 * `npm run faults -- --kafka cluster --temporal server`.
 */
import type { FaultKind, LaneSpec } from './harness';
import { expectLaneHeld, faultSeed, laneTitle, useHarnessRun } from './suite';

const kinds: FaultKind[] = ['kafka-leader-kill', 'kafka-isr-shrink', 'kafka-rolling-restart', 'temporal-restart', 'store-restart'];
const lanes: LaneSpec[] = [
  { store: 'postgres', fastPath: false, relays: 1 },
  { store: 'postgres', fastPath: true, relays: 1 },
];

describe(`fault harness on a Kafka cluster and the Temporal server (CI size, seed ${faultSeed})`, () => {
  const result = useHarnessRun(
    {
      lanes,
      kafka: 'cluster',
      temporal: 'server',
      kinds,
      durationMs: 200_000,
      faults: kinds.length,
      ratePerSecond: 2,
      hotKeyShare: 0.3,
      drainTimeoutMs: 360_000,
    },
    1_200_000,
  );

  it('injected each fault of the production shape once', () => {
    expect(result().faults.map((f) => f.kind).sort()).toEqual([...kinds].sort());
  });

  it.each(lanes.map((lane) => [laneTitle(lane), lane] as const))('%s: loses nothing, invents nothing, keeps per-key order, applies each event once', (_name, spec) => {
    expectLaneHeld(result(), spec);
  });
});
