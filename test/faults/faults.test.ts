/**
 * The fault harness at CI size, on MongoDB and on PostgreSQL, in the default mode and on the fast
 * path, and on the fast path with three partitioned relays (issue 17): a few minutes of steady load
 * with every kind of fault injected once (relay and worker SIGKILL, the sender — worker, or relay on
 * the fast path — killed right after Kafka's acknowledgement, Kafka restart and freeze, Temporal
 * restart, the store's server restarted) plus aborted transactions; the independent checker's
 * verdict must show nothing lost, nothing invented, order kept and the inbox applying each event once.
 * The seed is printed; TXOUTBOX_FAULT_SEED repeats a run. The long soak is `npm run faults`.
 */
import { STORE_KINDS } from '../support/pipeline-store';
import { runFaultHarness } from './harness';

const seed = Number(process.env.TXOUTBOX_FAULT_SEED ?? Date.now() % 100_000);

describe.each(
  STORE_KINDS.flatMap((store) => [
    [store, 'default mode, one relay', false, 1],
    [store, 'fast path, one relay', true, 1],
    // Issue 17: relays sharing the partitions by leases, one of them killed.
    [store, 'fast path, three partitioned relays', true, 3],
  ] as const),
)('fault harness (CI size), %s store, %s', (store, _mode, fastPath, relays) => {
  it(`loses nothing, invents nothing and keeps per-key order under 7 faults (seed ${seed})`, async () => {
    const lines: string[] = [];
    const verdict = await runFaultHarness({
      store,
      fastPath,
      relays,
      seed,
      durationMs: 150_000,
      faults: 7,
      drainTimeoutMs: 360_000,
      log: (line) => {
        lines.push(line);
        process.stderr.write(`[faults] ${line}\n`);
      },
    });
    expect(verdict.faults).toHaveLength(7);
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
    expect(verdict.inboxApplied).toBe(verdict.committed - verdict.stuck);
    expect(verdict.ok).toBe(true);
  }, 900_000);
});
