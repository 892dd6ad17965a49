#!/usr/bin/env node
// `txoutbox`: the operator CLI (workers/cli/cli.ts).
import { requirePeers } from './peers';

requirePeers('txoutbox', ['@temporalio/client', '@temporalio/common', '@temporalio/workflow', 'kafkajs']);
// Loaded after the check, so a missing peer is reported by name.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { runCli } = require('../cli/cli') as typeof import('../cli/cli');

runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
