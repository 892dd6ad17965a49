/**
 * The fault harness on its own (the soak): steady load, seeded random faults, each lane's independent
 * checker's verdict line at the end. Exit code 0 when every verdict passes, 1 when one does not.
 *
 *   npm run faults -- [--lanes mongodb:default,mongodb:fast,mongodb:fast:3] [--minutes 30] [--faults 50]
 *     [--kafka single|cluster] [--temporal dev|server]
 *     [--kinds kafka-outage,store-restart] [--seed N] [--rate 4] [--hot-key-share 0.3] [--sequencer-buffer 100] [--outage-minutes 2-5] [--drain-minutes 10]
 *
 * --lanes: the lanes run side by side, each <store>:<default|fast>[:<relays>] (more than one relay:
 *   partitioned, issue 17; a relay fault hits one of them). The old single-lane flags still work:
 *   --store, --fast-path, --relays.
 * --kafka cluster: the three-broker cluster of scripts/infra.sh (TXOUTBOX_KAFKA=cluster), started
 *   when it does not run, with its own faults (a partition leader killed, followers frozen until the
 *   in-sync set shrinks, a rolling restart) in place of the single broker's restart, freeze and slow proxy.
 * --temporal server: the Temporal server on PostgreSQL (TXOUTBOX_TEMPORAL=server) instead of the dev server.
 * --kinds: the kinds of fault drawn from (default: every kind of that Kafka, each once before any twice).
 * --hot-key-share: share of each lane's writes that are ordered events of one hot key; with a
 *   --sequencer-buffer below what the key gathers during an outage, its backlog outgrows the buffer.
 * --drain-minutes: how long, after the load stops, every event has to be published or stuck before
 *   the verdict counts the rest as lost (SecantusDB, a Python surrogate, drains a large backlog slowly).
 */
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { faultKindsFor, runFaultHarness, type FaultKind, type LaneSpec } from '../test/faults/harness';
import { STORE_KINDS } from '../test/support/pipeline-store';

const { values } = parseArgs({
  options: {
    lanes: { type: 'string' },
    store: { type: 'string', default: 'mongodb' },
    'fast-path': { type: 'boolean', default: false },
    relays: { type: 'string', default: '1' },
    minutes: { type: 'string', default: '30' },
    faults: { type: 'string', default: '50' },
    kinds: { type: 'string' },
    kafka: { type: 'string', default: 'single' },
    temporal: { type: 'string', default: 'dev' },
    seed: { type: 'string', default: String(Date.now() % 100_000) },
    rate: { type: 'string', default: '4' },
    'hot-key-share': { type: 'string', default: '0.3' },
    'sequencer-buffer': { type: 'string' },
    'outage-minutes': { type: 'string', default: '2-5' },
    'drain-minutes': { type: 'string', default: '10' },
  },
});

/** `<store>:<default|fast>[:<relays>]`, or the single-lane flags. */
function lanesFrom(): LaneSpec[] | string {
  const specs = values.lanes?.split(',') ?? [`${values.store}:${values['fast-path'] ? 'fast' : 'default'}:${values.relays}`];
  const lanes: LaneSpec[] = [];
  for (const spec of specs) {
    const [storeName, mode = 'default', relays = '1'] = spec.trim().split(':');
    const store = STORE_KINDS.find((kind) => kind === storeName);
    if (store === undefined || !['default', 'fast'].includes(mode) || !/^[1-9]\d*$/.test(relays)) {
      return `a lane is <store>:<default|fast>[:<relays>] with a store of ${STORE_KINDS.join(', ')}, got ${JSON.stringify(spec)}`;
    }
    lanes.push({ store, fastPath: mode === 'fast', relays: Number(relays) });
  }
  return lanes;
}

async function main(): Promise<number> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const lanes = lanesFrom();
  const outage = (values['outage-minutes'] ?? '').split('-').map(Number);
  const kinds = values.kinds?.split(',').map((k) => k.trim());
  const kafka = values.kafka === 'cluster' ? 'cluster' : 'single';
  const temporal = values.temporal === 'server' ? 'server' : 'dev';
  if (values.kafka !== kafka || values.temporal !== temporal) {
    console.error(`--kafka is single or cluster and --temporal dev or server; got ${JSON.stringify(values.kafka)} and ${JSON.stringify(values.temporal)}`);
    return 2;
  }
  const unknown = kinds?.find((k) => !(faultKindsFor(kafka) as readonly string[]).includes(k));
  if (unknown !== undefined) {
    console.error(`--kinds takes, with --kafka ${kafka}, ${faultKindsFor(kafka).join(', ')}; got ${JSON.stringify(unknown)}`);
    return 2;
  }
  if (typeof lanes === 'string' || outage.length !== 2 || outage.some((m) => !(m > 0))) {
    console.error(typeof lanes === 'string' ? lanes : `--outage-minutes is <least>-<most>, got ${JSON.stringify(values['outage-minutes'])}`);
    return 2;
  }
  const result = await runFaultHarness({
    lanes,
    kafka,
    temporal,
    seed: Number(values.seed),
    durationMs: Number(values.minutes) * 60_000,
    faults: Number(values.faults),
    ...(kinds === undefined ? {} : { kinds: kinds as FaultKind[] }),
    ratePerSecond: Number(values.rate),
    hotKeyShare: Number(values['hot-key-share']),
    ...(values['sequencer-buffer'] === undefined ? {} : { sequencerBuffer: Number(values['sequencer-buffer']) }),
    outageMs: [(outage[0] ?? 2) * 60_000, (outage[1] ?? 5) * 60_000],
    drainTimeoutMs: Number(values['drain-minutes']) * 60_000,
  });
  const byKind = new Map<string, number>();
  for (const f of result.faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  console.log(`faults by kind: ${[...byKind].map(([k, n]) => `${k}=${n}`).join(' ')}`);
  for (const verdict of result.lanes) console.log(verdict.line);
  return result.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
