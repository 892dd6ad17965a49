#!/usr/bin/env node
// `txoutbox-relay`: the outbox relay as a process (workers/main.ts).
import { requirePeers } from './peers';

requirePeers('txoutbox-relay');
// Loaded after the check, so a missing peer is reported by name.
// eslint-disable-next-line @typescript-eslint/no-require-imports
(require('../main') as typeof import('../main')).runMain('relay');
