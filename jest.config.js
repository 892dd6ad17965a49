// Five Jest projects (faults: the fault harness at CI size), as STYLE.md lays them out. `unit` needs no server; the others talk to
// the real Temporal dev server, Kafka broker and PostgreSQL that scripts/infra.sh starts.
/** @type {import('jest').Config['projects'][number]} */
const base = {
  preset: 'ts-jest',
  // Node's environment, telling afterEach hooks whether their test failed (a pipeline's logs are printed then only).
  testEnvironment: '<rootDir>/test/support/test-environment.js',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: { warnOnly: false } }] },
};

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...base,
      displayName: 'workflows',
      testMatch: ['<rootDir>/test/workflows/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/require-servers.ts',
      setupFiles: ['<rootDir>/test/support/quiet-temporal.ts'],
    },
    {
      ...base,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/require-servers.ts',
      setupFiles: ['<rootDir>/test/support/quiet-temporal.ts'],
    },
    {
      ...base,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/require-servers.ts',
      setupFiles: ['<rootDir>/test/support/quiet-temporal.ts'],
    },
    {
      // Restarts the servers through scripts/infra.sh: runs on its own (--runInBand, as npm test does).
      ...base,
      displayName: 'faults',
      testMatch: ['<rootDir>/test/faults/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/require-servers.ts',
      setupFiles: ['<rootDir>/test/support/quiet-temporal.ts'],
    },
  ],
  testTimeout: 120_000,
  // Every test by name, so a skipped one shows the reason it carries in its name.
  verbose: true,
};
