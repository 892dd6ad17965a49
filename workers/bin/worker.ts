#!/usr/bin/env node
// `txoutbox-worker`: the outbox worker as a process (workers/process/main.ts).
import { requirePeers } from './peers';

requirePeers('txoutbox-worker');
// Loaded after the check, so a missing peer is reported by name.
// eslint-disable-next-line @typescript-eslint/no-require-imports
(require('../process/main') as typeof import('../process/main')).runMain('worker');
