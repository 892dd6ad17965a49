/**
 * What the CI-size fault tests share: one harness run for the whole file (started in beforeAll and
 * stopped at its next step should it outlive the file), and the verdict every lane must reach.
 */
import { runFaultHarness, type HarnessOptions, type HarnessResult, type LaneSpec } from './harness';
import { laneName } from './lane';

export const faultSeed = Number(process.env.TXOUTBOX_FAULT_SEED ?? Date.now() % 100_000);

/** Runs the harness once for the calling describe block; the returned function gives its result. */
export function useHarnessRun(options: Omit<HarnessOptions, 'signal' | 'seed' | 'log'>, timeoutMs: number): () => HarnessResult {
  let result: HarnessResult | undefined;
  const stop = new AbortController();
  let running: Promise<unknown> = Promise.resolve();

  beforeAll(async () => {
    const run = runFaultHarness({ ...options, signal: stop.signal, seed: faultSeed, log: (line) => process.stderr.write(`[faults] ${line}\n`) });
    running = run.catch(() => undefined);
    result = await run;
  }, timeoutMs);

  // Should the run outlast its timeout, it stops at its next step and cleans up, rather than writing
  // on after the test file has ended.
  afterAll(async () => {
    stop.abort();
    await running;
  }, 600_000);

  return () => {
    if (result === undefined) throw new Error('the fault harness run did not finish');
    return result;
  };
}

/** A lane's checker: nothing lost or invented, order kept, the inbox applying each event once. */
export function expectLaneHeld(result: HarnessResult, spec: LaneSpec, expectAborted = false): void {
  const verdict = result.lanes.find((v) => v.lane === laneName(spec));
  expect(verdict).toBeDefined();
  if (verdict === undefined) return;
  expect(verdict.committed).toBeGreaterThan(100);
  if (expectAborted) expect(verdict.aborted).toBeGreaterThan(0);
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
}

/** A test title for a lane. */
export function laneTitle(spec: LaneSpec): string {
  return `${spec.store}, ${spec.fastPath ? 'fast path' : 'default mode'}, ${spec.relays} relay(s)`;
}
