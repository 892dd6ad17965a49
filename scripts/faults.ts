/**
 * The fault harness on its own (the soak): steady load, seeded random faults, the independent
 * checker's verdict line at the end. Exit code 0 when the verdict passes, 1 when it does not.
 *
 *   npm run faults -- [--store mongodb|postgres] [--minutes 20] [--faults 50] [--seed N] [--rate 4] [--fast-path] [--relays 3] [--drain-minutes 10]
 *
 * --relays N: N relays, partitioned (issue 17); a relay fault hits one of them.
 * --drain-minutes: how long, after the load stops, every event has to be published or stuck before
 * the verdict counts the rest as lost (SecantusDB, a Python surrogate, drains a large backlog slowly).
 */
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { runFaultHarness } from '../test/faults/harness';
import { STORE_KINDS, type StoreKind } from '../test/support/pipeline-store';

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'mongodb' },
    minutes: { type: 'string', default: '20' },
    faults: { type: 'string', default: '50' },
    seed: { type: 'string', default: String(Date.now() % 100_000) },
    rate: { type: 'string', default: '4' },
    'fast-path': { type: 'boolean', default: false },
    'drain-minutes': { type: 'string', default: '10' },
    relays: { type: 'string', default: '1' },
  },
});

async function main(): Promise<number> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const store = STORE_KINDS.find((kind) => kind === values.store);
  if (store === undefined) {
    console.error(`--store must be one of ${STORE_KINDS.join(', ')}, got ${JSON.stringify(values.store)}`);
    return 2;
  }
  const verdict = await runFaultHarness({
    store: store satisfies StoreKind,
    seed: Number(values.seed),
    durationMs: Number(values.minutes) * 60_000,
    faults: Number(values.faults),
    ratePerSecond: Number(values.rate),
    fastPath: values['fast-path'],
    relays: Number(values.relays),
    drainTimeoutMs: Number(values['drain-minutes']) * 60_000,
  });
  const byKind = new Map<string, number>();
  for (const f of verdict.faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  console.log(`faults by kind: ${[...byKind].map(([k, n]) => `${k}=${n}`).join(' ')}`);
  console.log(verdict.line);
  return verdict.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
