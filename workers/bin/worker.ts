#!/usr/bin/env node
// `txoutbox-worker`: the outbox worker as a process (workers/process/main.ts).
import { processArguments } from './arguments';
import { requirePeers } from './peers';

const { configFile } = processArguments(
  'txoutbox-worker',
  'Runs the Temporal worker of the outbox: the event workflows, their publish activity (kafkajs) and the\ncompensations of TXOUTBOX_COMPENSATIONS_MODULE, on TXOUTBOX_TASK_QUEUE.',
  process.argv.slice(2),
);
requirePeers('txoutbox-worker');
// Loaded after the check, so a missing peer is reported by name.
// eslint-disable-next-line @typescript-eslint/no-require-imports
(require('../process/main') as typeof import('../process/main')).runMain('worker', configFile);
