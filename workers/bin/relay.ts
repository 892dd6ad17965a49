#!/usr/bin/env node
// `txoutbox-relay`: the outbox relay as a process (workers/process/main.ts).
import { processArguments } from './arguments';
import { requirePeers } from './peers';

const { configFile } = processArguments(
  'txoutbox-relay',
  'Runs the outbox relay: reads the store\'s change feed and starts one Temporal workflow per event\n(with TXOUTBOX_FAST_PATH, publishes first itself); with TXOUTBOX_RELAY_RUNS_WORKER=true it runs the\nworker in the same process.',
  process.argv.slice(2),
);
requirePeers('txoutbox-relay');
// Loaded after the check, so a missing peer is reported by name.
// eslint-disable-next-line @typescript-eslint/no-require-imports
(require('../process/main') as typeof import('../process/main')).runMain('relay', configFile);
