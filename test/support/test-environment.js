// Jest's node environment, plus what a failing test needs to be read:
// - `globalThis.__txoutboxTestFailed` says, from the test's afterEach hooks on, whether the running
//   test has failed. A pipeline's teardown prints the logs of the relay and worker it ran only then;
// - the Temporal SDK's records written while a test ran (quiet-temporal.ts) are printed after it
//   only when it failed, so a passing run stays quiet.
const { TestEnvironment } = require('jest-environment-node');
const sdkTestLog = require('./sdk-test-log');

class OutboxTestEnvironment extends TestEnvironment {
  logFrom = sdkTestLog.offset();

  async handleTestEvent(event) {
    if (event.name === 'test_start') {
      this.global.__txoutboxTestFailed = false;
      this.logFrom = sdkTestLog.offset();
    }
    if (event.name === 'test_fn_failure' || event.name === 'hook_failure') this.global.__txoutboxTestFailed = true;
    const failed = (event.name === 'test_done' && event.test.errors.length > 0) || event.name === 'hook_failure';
    if (failed) this.printSdkLog(event.name === 'hook_failure' ? `the ${event.hook.type} hook` : event.test.name);
    if (event.name === 'test_done') this.logFrom = sdkTestLog.offset();
  }

  printSdkLog(what) {
    const { lines, total } = sdkTestLog.since(this.logFrom);
    if (total === 0) return;
    process.stderr.write(`--- Temporal SDK records while "${what}" ran (the last ${lines.length} of ${total}; all in ${sdkTestLog.file}) ---\n${lines.join('\n')}\n---\n`);
  }
}

module.exports = OutboxTestEnvironment;
