#!/usr/bin/env node
// `txoutbox-worker`: the outbox worker as a process (workers/main.ts).
import { requirePeers } from './peers';

requirePeers('txoutbox-worker');
// Loaded after the check, so a missing peer is reported by name.
// eslint-disable-next-line @typescript-eslint/no-require-imports
(require('../main') as typeof import('../main')).runMain('worker');
