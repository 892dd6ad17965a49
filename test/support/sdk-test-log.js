// Where the Temporal SDK's records of the workers a test runs in this process go: a file, read back
// only when a test fails (test-environment.js), so a passing run stays quiet. CommonJS: the Jest
// environment loads it outside ts-jest.
const { appendFileSync, mkdirSync, readFileSync, statSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

const dir = join(tmpdir(), 'txoutbox-test-logs');
/** One file per Jest process (the suite runs in band: one process, every test file). */
const file = join(dir, `sdk-${process.pid}.log`);

function append(line) {
  mkdirSync(dir, { recursive: true });
  appendFileSync(file, `${line}\n`);
}

/** Where the file ends now (where a test starting now begins). */
function offset() {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The last `max` lines written since `from`, and how many there were. */
function since(from, max = 200) {
  let text = '';
  try {
    text = readFileSync(file, 'utf8').slice(from);
  } catch {
    return { lines: [], total: 0 };
  }
  const lines = text.split('\n').filter((l) => l !== '');
  return { lines: lines.slice(-max), total: lines.length };
}

module.exports = { file, append, offset, since };
