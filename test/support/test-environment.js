// Jest's node environment, plus one flag: `globalThis.__txoutboxTestFailed` says, from the test's
// afterEach hooks on, whether the running test has failed. A pipeline's teardown prints the logs
// of the relay and worker it ran only then, so a passing run stays quiet.
const { TestEnvironment } = require('jest-environment-node');

class OutboxTestEnvironment extends TestEnvironment {
  async handleTestEvent(event) {
    if (event.name === 'test_start') this.global.__txoutboxTestFailed = false;
    if (event.name === 'test_fn_failure' || event.name === 'hook_failure') this.global.__txoutboxTestFailed = true;
  }
}

module.exports = OutboxTestEnvironment;
