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
import { FAULT_KINDS, runFaultHarness, type HarnessResult, type LaneSpec } from './harness';

const seed = Number(process.env.TXOUTBOX_FAULT_SEED ?? Date.now() % 100_000);
const lanes: LaneSpec[] = STORE_KINDS.flatMap((store) => [
  { store, fastPath: false, relays: 1 },
  { store, fastPath: true, relays: 1 },
  { store, fastPath: true, relays: 3 },
]);

describe(`fault harness (CI size), six lanes under every kind of fault (seed ${seed})`, () => {
  let result: HarnessResult;
  const stop = new AbortController();
  let running: Promise<unknown> = Promise.resolve();

  beforeAll(async () => {
    const run = runFaultHarness({
      signal: stop.signal,
      seed,
      lanes,
      durationMs: 300_000,
      faults: FAULT_KINDS.length,
      ratePerSecond: 1,
      hotKeyShare: 0.5,
      sequencerBuffer: 30,
      outageMs: [120_000, 120_000],
      drainTimeoutMs: 360_000,
      log: (line) => process.stderr.write(`[faults] ${line}\n`),
    });
    running = run.catch(() => undefined);
    result = await run;
  }, 1_500_000);

  // Should the run outlast its timeout, it stops at its next step and cleans up, rather than writing
  // on after the test file has ended.
  afterAll(async () => {
    stop.abort();
    await running;
  }, 600_000);

  it('injected every kind of fault once', () => {
    expect(result.faults.map((f) => f.kind).sort()).toEqual([...FAULT_KINDS].sort());
  });

  it.each(lanes.map((lane) => [`${lane.store}, ${lane.fastPath ? 'fast path' : 'default mode'}, ${lane.relays} relay(s)`, lane] as const))(
    '%s: loses nothing, invents nothing, keeps per-key order, applies each event once',
    (_name, spec) => {
      const verdict = result.lanes.find((v) => v.lane.startsWith(`${spec.store}/${spec.fastPath ? 'fast-path' : 'default'}`) && (spec.relays > 1) === v.lane.endsWith('-relays'));
      expect(verdict).toBeDefined();
      if (verdict === undefined) return;
      expect(verdict.committed).toBeGreaterThan(100);
      expect(verdict.aborted).toBeGreaterThan(0);
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
    },
  );
});
