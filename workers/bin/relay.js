#!/usr/bin/env node
// The outbox relay as a process (workers/main.ts), run through tsx so no build step is needed.
require('tsx/cjs');
require('../main.ts').runMain('relay');
