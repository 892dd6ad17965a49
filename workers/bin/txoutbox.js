#!/usr/bin/env node
// The `txoutbox` operator CLI (workers/cli.ts), run through tsx so no build step is needed.
require('tsx/cjs');
const { runCli } = require('../cli.ts');

runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
