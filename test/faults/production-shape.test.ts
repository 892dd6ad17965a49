/**
 * The fault harness on the production shape, at CI size (issue 27): the three-broker Kafka cluster
 * (replication factor 3, min.insync.replicas=2) and the Temporal server on PostgreSQL, both from
 * scripts/infra.sh (started here when they do not run, and stopped after), with the PostgreSQL store
 * in the default mode and on the fast path. A few minutes of load under the cluster's faults (a
 * partition leader killed, its followers frozen until the in-sync set shrinks and writes cannot be
 * acknowledged, a rolling restart), a Temporal server restart, and a PostgreSQL restart under both
 * the store and the Temporal server. The checker as in faults.test.ts. The soak is
 * `npm run faults -- --kafka cluster --temporal server`.
 */
import { runFaultHarness, type FaultKind, type HarnessResult, type LaneSpec } from './harness';

const seed = Number(process.env.TXOUTBOX_FAULT_SEED ?? Date.now() % 100_000);
const kinds: FaultKind[] = ['kafka-leader-kill', 'kafka-isr-shrink', 'kafka-rolling-restart', 'temporal-restart', 'store-restart'];
const lanes: LaneSpec[] = [
  { store: 'postgres', fastPath: false, relays: 1 },
  { store: 'postgres', fastPath: true, relays: 1 },
];

describe(`fault harness on a Kafka cluster and the Temporal server (CI size, seed ${seed})`, () => {
  let result: HarnessResult;
  const stop = new AbortController();
  let running: Promise<unknown> = Promise.resolve();

  beforeAll(async () => {
    const run = runFaultHarness({
      signal: stop.signal,
      seed,
      lanes,
      kafka: 'cluster',
      temporal: 'server',
      kinds,
      durationMs: 240_000,
      faults: kinds.length,
      ratePerSecond: 2,
      hotKeyShare: 0.3,
      drainTimeoutMs: 360_000,
      log: (line) => process.stderr.write(`[faults] ${line}\n`),
    });
    running = run.catch(() => undefined);
    result = await run;
  }, 1_200_000);

  afterAll(async () => {
    stop.abort();
    await running;
  }, 600_000);

  it('injected each fault of the production shape once', () => {
    expect(result.faults.map((f) => f.kind).sort()).toEqual([...kinds].sort());
  });

  it.each(lanes.map((lane) => [lane.fastPath ? 'fast path' : 'default mode', lane] as const))('postgres, %s: loses nothing, invents nothing, keeps per-key order, applies each event once', (_name, spec) => {
    const verdict = result.lanes.find((v) => v.lane === `postgres/${spec.fastPath ? 'fast-path' : 'default'}`);
    expect(verdict).toBeDefined();
    if (verdict === undefined) return;
    expect(verdict.committed).toBeGreaterThan(100);
    expect({
      lost: verdict.lost,
      invented: verdict.invented,
      abortedLeaked: verdict.abortedLeaked,
      missingInStore: verdict.missingInStore,
      orderViolations: verdict.orderViolations,
      unresolved: verdict.unresolved,
      inboxWrong: verdict.inboxWrong,
    }).toEqual({ lost: 0, invented: 0, abortedLeaked: 0, missingInStore: 0, orderViolations: 0, unresolved: 0, inboxWrong: 0 });
    expect(verdict.inboxApplied).toBe(verdict.committed - verdict.stuck - verdict.lostWithTopic);
    expect(verdict.ok).toBe(true);
  });
});
