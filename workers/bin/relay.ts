#!/usr/bin/env node
// `txoutbox-relay`: the outbox relay as a process (workers/process/main.ts).
import { requirePeers } from './peers';

requirePeers('txoutbox-relay');
// Loaded after the check, so a missing peer is reported by name.
// eslint-disable-next-line @typescript-eslint/no-require-imports
(require('../process/main') as typeof import('../process/main')).runMain('relay');
