#!/usr/bin/env node
// `txoutbox`: the operator CLI (workers/cli/cli.ts). It checks what was typed first, and each command
// loads the peers it needs (the Temporal SDK, kafkajs) and names a missing one, so no check is made here.
import { packageVersion } from './arguments';
import { runCli } from '../cli/cli';

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  process.stdout.write(`${packageVersion()}\n`);
  process.exit(0);
}
runCli(argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
