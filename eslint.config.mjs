// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'test/fixtures/consumer-service/**', '.data/**', 'coverage/**', 'scripts/temporal-cli/**', 'jest.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // The CommonJS child of the fault harness, a service's compensations module, Jest's test environment.
    files: ['test/faults/*.js', 'test/fixtures/*.js', 'test/fixtures/contracts/*.js', 'test/support/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', process: 'readonly', console: 'readonly', module: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no drivers, no Node built-ins.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['mongodb', 'kafkajs', 'pg', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'],
          patterns: [
            { group: ['node:*'], message: 'Workflows are deterministic: no Node.js built-ins.' },
            { group: ['fs', 'path', 'crypto', 'os', 'child_process', 'net', 'http', 'https'], message: 'Workflows are deterministic: no Node.js built-ins.' },
          ],
        },
      ],
    },
  },
);
