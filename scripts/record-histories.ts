/**
 * Records the event histories the replay test (test/workflows/replay.test.ts) replays on the current
 * workflow code. Run on purpose, when a workflow changes what it does, and keep the older files:
 * each one stands for workflows that may still be running in production when new code deploys.
 *
 *   npm run record-histories -- [--workflows DIR] [--label NAME] [--out DIR]
 *
 * --workflows  the workflow code to record with (default: this checkout's workflows/); point it at an
 *              older checkout's workflows/ to record what an earlier version left running
 * --label      the files' suffix: <scenario>.<label>.json (default: the short git commit)
 * --out        where the files go (default: test/replay/histories)
 *
 * The workflows run on the real Temporal server the scripts started, with their activities replaced
 * by stand-ins: a history records an activity's result, not how it was computed, so the stand-ins
 * only choose which path each scenario takes.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { OutboxStatus } from '../domain/outbox';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { OutboxActivities, RunResult } from '../activities';
import { enqueueSignal, type EnqueuedEvent } from '../workflows/signals';
import { DEFAULT_PUBLISH_POLICY, type PublishHeartbeat, type PublishPolicy, type PublishReceipt } from '../workflows/types';

const REPO = join(__dirname, '..');
const { values } = parseArgs({
  options: {
    workflows: { type: 'string', default: join(REPO, 'workflows') },
    label: { type: 'string', default: '' },
    out: { type: 'string', default: join(REPO, 'test', 'replay', 'histories') },
  },
});
const label = values.label || execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
const address = process.env.TXOUTBOX_TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
const stamp = Date.now().toString(36);
/** Fast retries: the histories hold the same commands as with the default policy, sooner. */
const policy: PublishPolicy = { ...DEFAULT_PUBLISH_POLICY, initialIntervalMs: 50, maximumIntervalMs: 100, maximumAttempts: 2, deadLetterTopic: 'orders.dlq' };

/** Event ids whose publication fails (until an operator retries it). */
const failing = new Set<string>();
const published: string[] = [];
let openSequence: number | null = 1;
/** The lowest open sequence of the held key (the held-across-continue-as-new scenario). */
let heldOpen: number | null = 1;

/** Event ids whose only attempt outlives its timeout, its send acknowledged late (the store then says published). */
const lateAcknowledged = new Set<string>();
/** The lowest open sequence of the key whose held event is settled while its workflow still runs. */
let lateOpen: number | null = 1;
const receipt = (eventId: string): PublishReceipt => ({ eventId, topic: 'orders', partition: 0, offset: String(published.length), publishedAt: new Date(0).toISOString(), attempts: 1, alreadyPublished: false });

const activities: OutboxActivities = {
  publishEvent: async (eventId: string): Promise<PublishReceipt> => {
    if (lateAcknowledged.has(eventId)) {
      // Says its send may be acknowledged for 2 s more, then outlives the attempt's 1 s timeout.
      Context.current().heartbeat({ inFlightUntil: Date.now() + 2_000 } satisfies PublishHeartbeat);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
    }
    if (failing.has(eventId)) throw ApplicationFailure.retryable('broker unavailable (stand-in)', 'PUBLISH_FAILED');
    published.push(eventId);
    return receipt(eventId);
  },
  // A key's run: published up to its first failing event (none: the sequencer holds that one).
  publishRun: async (eventIds: readonly string[]): Promise<RunResult> => {
    const stop = eventIds.findIndex((id) => failing.has(id));
    const run = stop === -1 ? [...eventIds] : eventIds.slice(0, stop);
    const receipts = run.map((eventId) => {
      published.push(eventId);
      return { ...receipt(eventId), alreadyPublished: true };
    });
    return { published: run, following: [], receipts };
  },
  escalateEvent: async () => ({ attempts: policy.maximumAttempts, status: OutboxStatus.stuck }),
  reopenEvent: async (eventId: string) => {
    failing.delete(eventId);
    return true;
  },
  resolveEvent: async () => true,
  compensateEvent: async () => undefined,
  publishDeadLetter: async () => undefined,
  publishedReceipt: async (eventId: string) => (lateAcknowledged.has(eventId) ? receipt(eventId) : null),
  nextOpenSequence: async (_topic: string, key: string) => (key.startsWith('held-') ? heldOpen : key.startsWith('late-') ? lateOpen : openSequence),
  waitUntilSettled: async () => undefined,
};

async function waitFor(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`record-histories: ${what} did not happen within 90 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function statusOf(handle: WorkflowHandle): Promise<string> {
  return ((await handle.query('state')) as { status: string }).status;
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const taskQueue = `record-histories-${stamp}`;
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  const workerConnection = await NativeConnection.connect({ address });
  const workflowsPath = resolve(values.workflows);
  const worker = await Worker.create({ connection: workerConnection, taskQueue, workflowBundle: await bundleWorkflowCode({ workflowsPath }), activities });
  const recorded: Array<{ name: string; handle: WorkflowHandle }> = [];
  const publish = (name: string, eventId: string): Promise<WorkflowHandle> =>
    client.workflow.start('publishEventWorkflow', { taskQueue, workflowId: `outbox-${eventId}`, args: [{ eventId, policy }] }).then((handle) => {
      recorded.push({ name, handle });
      return handle;
    });

  await worker.runUntil(async () => {
    // publishEventWorkflow: published at the first attempt.
    await (await publish('publish-event.published', `${stamp}-published`)).result();

    // Escalated (attempts spent, dead-letter copy), then each operator action.
    for (const action of ['retry', 'discard', 'compensate'] as const) {
      const eventId = `${stamp}-stuck-${action}`;
      failing.add(eventId);
      const handle = await publish(`publish-event.stuck-then-${action}`, eventId);
      await waitFor(`${eventId} stuck`, async () => (await statusOf(handle)) === 'stuck');
      if (action === 'retry') await handle.executeUpdate('retry', { args: [] });
      else if (action === 'discard') await handle.executeUpdate('discard', { args: [{ reason: 'recorded for the replay test' }] });
      else await handle.signal('compensate', { reason: 'recorded for the replay test' });
      await handle.result();
    }

    // An attempt that outlives its timeout (start-to-close 1 s): the workflow waits until its send can
    // no longer be acknowledged, finds the store says published, and completes as published.
    const lateId = `${stamp}-late-ack`;
    lateAcknowledged.add(lateId);
    const late = await client.workflow.start('publishEventWorkflow', {
      taskQueue,
      workflowId: `outbox-${lateId}`,
      args: [{ eventId: lateId, policy: { ...policy, startToCloseTimeoutMs: 1_000, maximumAttempts: 1 } }],
    });
    recorded.push({ name: 'publish-event.timed-out-then-acknowledged', handle: late });
    await late.result();

    // keySequencerWorkflow: events 1 and 2 in order (one run, and their own workflows, with
    // sequencerPublishesRuns); then 3 and 4 settled elsewhere (the fast path) while 5 arrives; 5
    // published; the run is then ended (it would idle for ten minutes).
    const key = `order-${stamp}`;
    const sequencerId = `outbox-key-orders/${key}`;
    const event = (sequence: number): EnqueuedEvent => ({ eventId: `${stamp}-seq-${sequence}`, sequence, type: 'orders.LineAdded', aggregateId: key });
    const sequencer = await client.workflow.signalWithStart('keySequencerWorkflow', {
      taskQueue,
      workflowId: sequencerId,
      args: [{ topic: 'orders', key, policy }],
      signal: enqueueSignal,
      signalArgs: [[event(1), event(2)]],
    });
    recorded.push({ name: 'key-sequencer.in-order-then-settled-elsewhere', handle: sequencer });
    await waitFor('events 1 and 2 published', () => published.includes(event(2).eventId));
    // The workflow the run starts for each event it published: it records the run's receipt.
    const recordedByRun = client.workflow.getHandle(`outbox-${event(2).eventId}`);
    await waitFor('the run to start event 2\'s workflow', () => recordedByRun.describe().then(() => true, () => false));
    await recordedByRun.result();
    recorded.push({ name: 'publish-event.recorded-by-its-run', handle: recordedByRun });
    openSequence = 5;
    await sequencer.signal(enqueueSignal, event(5));
    // Without the wake-up patch the sequencer only notices after its 30 s recheck: still recorded.
    await waitFor('event 5 published', () => published.includes(event(5).eventId));
    await sequencer.terminate('recorded for the replay test');

    // keySequencerWorkflow holding a stuck event while signals keep arriving: it continues as new
    // (a small holdingHistoryLimit), the next run finds the held workflow running elsewhere and
    // watches the store; an operator's retry publishes it, and the next run moves on to event 2.
    const heldKey = `held-${stamp}`;
    const heldId = `outbox-key-orders/${heldKey}`;
    const held = (sequence: number): EnqueuedEvent => ({ eventId: `${stamp}-held-${sequence}`, sequence, type: 'orders.LineAdded', aggregateId: heldKey });
    failing.add(held(1).eventId);
    const holding = await client.workflow.signalWithStart('keySequencerWorkflow', {
      taskQueue,
      workflowId: heldId,
      args: [{ topic: 'orders', key: heldKey, policy, holdingHistoryLimit: 20 }],
      signal: enqueueSignal,
      signalArgs: [[held(1), held(2)]],
    });
    const firstRun = client.workflow.getHandle(heldId, holding.signaledRunId);
    const child = client.workflow.getHandle(`outbox-${held(1).eventId}`);
    await waitFor('held event 1 stuck', async () => (await statusOf(child).catch(() => '')) === 'stuck');
    await waitFor('the holding sequencer to continue as new', async () => {
      await client.workflow.getHandle(heldId).signal(enqueueSignal, held(2));
      return (await client.workflow.getHandle(heldId).describe()).runId !== holding.signaledRunId;
    });
    const secondRun = client.workflow.getHandle(heldId, (await client.workflow.getHandle(heldId).describe()).runId);
    recorded.push({ name: 'key-sequencer.held-across-continue-as-new', handle: firstRun });
    recorded.push({ name: 'key-sequencer.held-run-settled-elsewhere', handle: secondRun });
    await child.executeUpdate('retry', { args: [] });
    await child.result();
    heldOpen = 2;
    // The next run asks the store at its 30 s recheck.
    await waitFor('held event 2 published', () => published.includes(held(2).eventId));
    await client.workflow.getHandle(heldId).terminate('recorded for the replay test'); // its latest run (the second may have continued as new)

    // keySequencerWorkflow holding an event whose workflow keeps retrying, settled meanwhile in the
    // store (a late acknowledgement): at its next look at the store (recheckMs 1 s) it moves on.
    const lateKey = `late-${stamp}`;
    const lateEvent = (sequence: number): EnqueuedEvent => ({ eventId: `${stamp}-late-${sequence}`, sequence, type: 'orders.LineAdded', aggregateId: lateKey });
    failing.add(lateEvent(1).eventId);
    const settling = await client.workflow.signalWithStart('keySequencerWorkflow', {
      taskQueue,
      workflowId: `outbox-key-orders/${lateKey}`,
      args: [{ topic: 'orders', key: lateKey, policy: { ...policy, maximumAttempts: 0 }, recheckMs: 1_000 }],
      signal: enqueueSignal,
      signalArgs: [[lateEvent(1), lateEvent(2)]],
    });
    recorded.push({ name: 'key-sequencer.held-settled-while-its-workflow-runs', handle: settling });
    await waitFor('late event 1 held', async () => ((await settling.query('sequencer')) as { holding: string | null }).holding === lateEvent(1).eventId);
    lateOpen = 2;
    await waitFor('late event 2 published', () => published.includes(lateEvent(2).eventId));
    await settling.terminate('recorded for the replay test');
    await client.workflow.getHandle(`outbox-${lateEvent(1).eventId}`).terminate('recorded for the replay test');
  });

  mkdirSync(values.out, { recursive: true });
  for (const { name, handle } of recorded) {
    const history = await handle.fetchHistory();
    const file = join(values.out, `${name}.${label}.json`);
    writeFileSync(file, historyToJSON(history) + '\n');
    process.stdout.write(`${file}: ${history.events?.length ?? 0} events\n`);
  }
  await workerConnection.close();
  await connection.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
