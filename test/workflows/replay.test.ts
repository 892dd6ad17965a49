/**
 * Running workflows replay on new code: every history kept in test/replay/histories (recorded by
 * `npm run record-histories`, on purpose, from the code of its day) must replay on the current
 * workflow code without a nondeterminism error. A behaviour change that is not behind `patched()`
 * fails here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { outboxWorkflowBundle } from '../support/pipeline';

const DIR = join(__dirname, '..', 'replay', 'histories');
const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

describe('recorded workflow histories replay on the current code', () => {
  test('a history of each workflow is kept (publish, each operator action, an attempt acknowledged after its timeout, one recording the run of its key, the key sequencer in order, holding across continue-as-new and settled while its held workflow runs, and one from before the first patch)', () => {
    for (const scenario of [
      'publish-event.published',
      'publish-event.stuck-then-retry',
      'publish-event.stuck-then-discard',
      'publish-event.stuck-then-compensate',
      'publish-event.timed-out-then-acknowledged',
      'publish-event.recorded-by-its-run',
      'key-sequencer.in-order',
      'key-sequencer.held-across-continue-as-new',
      'key-sequencer.held-run-settled-elsewhere',
      'key-sequencer.held-settled-while-its-workflow-runs',
    ]) {
      expect(files.filter((f) => f.startsWith(scenario)).length).toBeGreaterThan(0);
    }
    expect(files.filter((f) => f.includes('.before-patches.')).length).toBeGreaterThan(0);
  });

  test.each(files)('%s replays without a nondeterminism error', async (file) => {
    const history = historyFromJSON(JSON.parse(readFileSync(join(DIR, file), 'utf8')));
    expect(history.events?.length).toBeGreaterThan(0);
    // Throws DeterminismViolationError (or the workflow's own failure) when the code no longer fits.
    await Worker.runReplayHistory({ workflowBundle: await outboxWorkflowBundle() }, history, file);
  });
});
